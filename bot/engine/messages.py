"""What flows in and out of the engine, independent of any channel.

Channels turn their wire formats into ``Inbound`` and render ``Reply`` in their own way
(Telegram inline keyboards, WeChat numbered lines and msgmenu, web chat buttons, terminal
numbers). Everything here is a frozen value: safe to log (after masking), hash and compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol


class ConversationKey(NamedTuple):
    """Identifies one conversation: one user of one account of one channel.

    ``account`` distinguishes several bots or official accounts on the same channel kind.

    A named tuple rather than a frozen dataclass: a message looks its key up in a dozen dicts
    (locks, the decoded states, the dispatcher's owners), and a tuple hashes and compares in C
    where a dataclass runs a Python ``__hash__`` and ``__eq__`` each time.
    """

    channel: str
    account: str
    user_id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.account}:{self.user_id}"

    @classmethod
    def parse(cls, text: str) -> ConversationKey:
        channel, account, user_id = text.split(":", 2)
        return cls(channel, account, user_id)


class InboundKind(StrEnum):
    TEXT = "text"
    COMMAND = "command"  # /start, /menu, a WeChat menu click: payload is the command name
    CHOICE = "choice"  # a tapped option: payload is the option token
    FILE = "file"  # an uploaded document or photo, already stored in the media store
    EVENT = "event"  # an external event (payment, review, UKey job, timeout, ...)


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file the media store holds; ``media_id`` is its content hash."""

    media_id: str
    filename: str
    content_type: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "media_id": self.media_id,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileRef:
        return cls(data["media_id"], data["filename"], data["content_type"], int(data["size"]))


@dataclass(frozen=True, slots=True)
class ExternalEvent:
    """Something that happened outside the conversation and may advance it.

    ``event_id`` is unique per event (the platform's event id, a UKey job id plus outcome, a
    timer id): it is the dedupe key, so a redelivered event has one effect.
    """

    event_id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Inbound:
    key: ConversationKey
    message_id: str  # the channel's delivery id: dedupe key within the conversation
    kind: InboundKind
    text: str = ""
    file: FileRef | None = None
    event: ExternalEvent | None = None
    at: datetime = field(default_factory=utcnow)
    # The user's language as the channel reports it (Telegram language_code, browser); only a
    # hint for a new conversation: the user's own choice wins.
    language_hint: str | None = None
    # The web chat visitor's address (see bot.channels.webchat.client_address): only passed to
    # the platform's SMS abuse limits, never stored with the message.
    client_ip: str | None = None

    @classmethod
    def text_message(cls, key: ConversationKey, message_id: str, text: str, **kw: Any) -> Inbound:
        return cls(key=key, message_id=message_id, kind=InboundKind.TEXT, text=text, **kw)

    @classmethod
    def choice(cls, key: ConversationKey, message_id: str, token: str, **kw: Any) -> Inbound:
        return cls(key=key, message_id=message_id, kind=InboundKind.CHOICE, text=token, **kw)

    @classmethod
    def command(cls, key: ConversationKey, message_id: str, name: str, **kw: Any) -> Inbound:
        return cls(key=key, message_id=message_id, kind=InboundKind.COMMAND, text=name, **kw)

    @classmethod
    def upload(cls, key: ConversationKey, message_id: str, file: FileRef, **kw: Any) -> Inbound:
        return cls(key=key, message_id=message_id, kind=InboundKind.FILE, file=file, **kw)

    @classmethod
    def external(cls, key: ConversationKey, event: ExternalEvent) -> Inbound:
        return cls(key=key, message_id=f"event:{event.event_id}", kind=InboundKind.EVENT, event=event)


@dataclass(frozen=True, slots=True)
class Option:
    """A tappable answer. ``token`` is what comes back as an ``InboundKind.CHOICE``."""

    token: str
    label: str


class ReplyKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FILE = "file"
    LINK = "link"
    TYPING = "typing"


@dataclass(frozen=True, slots=True)
class Reply:
    """One outbound message, already translated into the user's language.

    ``options`` render as buttons (or numbered lines); ``file`` is a media-store reference for
    IMAGE and FILE; ``url`` is the target of a LINK (text is its caption).
    """

    kind: ReplyKind
    text: str = ""
    options: tuple[Option, ...] = ()
    file: FileRef | None = None
    url: str | None = None
    # The full text for the recipient alone, sealed (``SecretBox``): ``text`` is then the masked
    # copy that transcripts, staff views and history keep; the outbox opens it to send.
    sealed: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind.value,
            "text": self.text,
            "options": [[o.token, o.label] for o in self.options],
            "file": self.file.to_dict() if self.file else None,
            "url": self.url,
        }
        if self.sealed is not None:
            data["sealed"] = self.sealed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        return cls(
            kind=ReplyKind(data["kind"]),
            text=data.get("text", ""),
            options=tuple(Option(t, label) for t, label in data.get("options", [])),
            file=FileRef.from_dict(data["file"]) if data.get("file") else None,
            url=data.get("url"),
            sealed=data.get("sealed"),
        )

    @classmethod
    def text_reply(cls, text: str, options: tuple[Option, ...] = ()) -> Reply:
        return cls(kind=ReplyKind.TEXT, text=text, options=options)


class Opener(Protocol):
    def open(self, sealed: dict[str, str]) -> Any: ...


def opened(reply: Reply, box: Opener | None) -> Reply:
    """The reply as its recipient reads it: the sealed full text (and full button labels, where
    sealed with it) in place of the masked copy. Without a key the masked copy, never an error."""
    if reply.sealed is None:
        return reply
    if box is None:
        return replace(reply, sealed=None)
    private = box.open(reply.sealed)
    if isinstance(private, dict):
        labels = list(private.get("labels") or [])
        options = reply.options
        if len(labels) == len(options):
            options = tuple(Option(o.token, str(label)) for o, label in zip(options, labels, strict=True))
        return replace(reply, text=str(private.get("text", reply.text)), options=options, sealed=None)
    return replace(reply, text=str(private), sealed=None)


class Origin(StrEnum):
    """Who speaks: the bot is silenced while staff own a conversation; staff are not."""

    BOT = "bot"
    STAFF = "staff"
    SYSTEM = "system"  # ownership notices that must reach the user whoever owns it


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A reply bound to a conversation, as the outbox stores and a channel sender receives it."""

    outbox_id: int
    key: ConversationKey
    reply: Reply
    origin: Origin
    created_at: datetime
    # Channel hints kept by the engine (e.g. the inbound message this answers, for the WeChat
    # passive reply); channels ignore what they do not know.
    in_reply_to: str | None = None
    attempt: int = 1  # which delivery attempt this is (1 for the first)
