"""What a Telegram update means for us, decided without any I/O.

Every update becomes exactly one of: something for the engine (text, command, tapped button),
a file to download first, a notice the channel answers itself (voice, stickers, edits), or
nothing (group chatter, service updates). The update id is the delivery id: ``u<update_id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from telegram import Message, Update

from bot.channels.deep_link import start_inbound
from bot.engine.messages import ConversationKey, Inbound


@dataclass(frozen=True)
class ForEngine:
    inbound: Inbound
    chat_id: int
    # a tapped button: its query must be answered, and its keyboard retired
    callback_query_id: str | None = None
    callback_message_id: int | None = None


@dataclass(frozen=True)
class FileToFetch:
    key: ConversationKey
    message_id: str
    chat_id: int
    file_id: str
    file_size: int | None
    filename: str
    at: datetime
    language_hint: str | None


@dataclass(frozen=True)
class Notice:
    key: ConversationKey
    chat_id: int
    name: str  # a key of channels.toml
    language_hint: str | None
    kind: str = ""


@dataclass(frozen=True)
class Ignored:
    reason: str


Decision = ForEngine | FileToFetch | Notice | Ignored

_UNSUPPORTED: tuple[tuple[str, str], ...] = (
    ("voice", "unsupported_voice"),
    ("audio", "unsupported_voice"),
    ("video_note", "unsupported_voice"),
    ("sticker", "unsupported_sticker"),
    ("animation", "unsupported_kind"),
    ("video", "unsupported_kind"),
    ("location", "unsupported_kind"),
    ("venue", "unsupported_kind"),
    ("contact", "unsupported_kind"),
    ("poll", "unsupported_kind"),
    ("dice", "unsupported_kind"),
    ("game", "unsupported_kind"),
    ("story", "unsupported_kind"),
)


def delivery_id(update: Update) -> str:
    return f"u{update.update_id}"


def decide(update: Update, account: str) -> Decision:
    if update.callback_query is not None:
        return _callback(update, account)
    if update.edited_message is not None:
        return _edited(update, account)
    message = update.message
    if message is None:
        return Ignored("not a message or button")
    if message.chat.type != "private" or message.from_user is None or message.from_user.is_bot:
        # Applicants talk to the bot privately; group traffic is the support desk's business.
        return Ignored("not a private chat with a person")
    key = ConversationKey("telegram", account, str(message.from_user.id))
    hint = message.from_user.language_code
    at = message.date
    mid = delivery_id(update)
    if message.document is not None:
        doc = message.document
        return FileToFetch(
            key, mid, message.chat.id, doc.file_id, doc.file_size, doc.file_name or "document", at, hint
        )
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return FileToFetch(
            key,
            mid,
            message.chat.id,
            largest.file_id,
            largest.file_size,
            f"photo_{message.message_id}.jpg",
            at,
            hint,
        )
    if message.text is not None:
        return ForEngine(_text_inbound(message, key, mid, hint), message.chat.id)
    for attribute, notice in _UNSUPPORTED:
        if getattr(message, attribute, None):
            return Notice(key, message.chat.id, notice, hint, kind=attribute)
    return Ignored("service message")


def _text_inbound(message: Message, key: ConversationKey, mid: str, hint: str | None) -> Inbound:
    text = message.text or ""
    at = message.date
    if text.startswith("/"):
        head, _, payload = text.partition(" ")
        name = head[1:].split("@", 1)[0].lower()
        if name == "start" and payload.strip():
            return start_inbound(key, mid, payload, at=at, language_hint=hint)
        if name:
            return Inbound.command(key, mid, name, at=at, language_hint=hint)
    return Inbound.text_message(key, mid, text, at=at, language_hint=hint)


def _callback(update: Update, account: str) -> Decision:
    query = update.callback_query
    assert query is not None
    key = ConversationKey("telegram", account, str(query.from_user.id))
    message = query.message
    chat_id = message.chat.id if message is not None else query.from_user.id
    if message is not None and message.chat.type != "private":
        return Ignored("button in a group chat")
    inbound = Inbound.choice(
        key,
        delivery_id(update),
        # A button from an inaccessible or foreign message carries no data: the engine answers
        # an empty token as a stale button, which is what it is.
        query.data or "",
        language_hint=query.from_user.language_code,
    )
    return ForEngine(
        inbound,
        chat_id,
        callback_query_id=query.id,
        callback_message_id=message.message_id if message is not None else None,
    )


def _edited(update: Update, account: str) -> Decision:
    message = update.edited_message
    assert message is not None
    if message.chat.type != "private" or message.from_user is None:
        return Ignored("edit outside a private chat")
    key = ConversationKey("telegram", account, str(message.from_user.id))
    return Notice(key, message.chat.id, "edited_ignored", message.from_user.language_code)
