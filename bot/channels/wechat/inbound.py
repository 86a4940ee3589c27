"""What a WeChat callback means for us, decided without I/O.

Delivery ids: ``MsgId`` for messages; ``<FromUserName>:<CreateTime>:<Event>:<EventKey>`` for
events, which have no MsgId (two different clicks in one second are two deliveries; WeChat's
retry of one repeats all four). Every callback becomes one of: something for the engine (opening a
customer-service allowance), a media file to download first, a consent change, a notice the
channel answers itself, or nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.channels.deep_link import start_inbound
from bot.engine.messages import ConversationKey, Inbound
from bot.errors import RequestRejected


class Interaction:
    """Which customer-service allowance an inbound opens."""

    MESSAGE = "message"  # 5 messages within 48 hours
    EVENT = "event"  # click, follow, scan: 3 within a minute
    NONE = "none"


@dataclass(frozen=True)
class ForEngine:
    inbound: Inbound
    interaction: str
    welcome: bool = False  # a follow: greet before the menu

    @property
    def key(self) -> ConversationKey:
        return self.inbound.key


@dataclass(frozen=True)
class MediaToFetch:
    key: ConversationKey
    delivery_id: str
    media_id: str
    kind: str  # image, file
    filename: str
    at: datetime


@dataclass(frozen=True)
class ConsentChange:
    key: ConversationKey
    delivery_id: str
    changes: tuple[tuple[str, str], ...]  # (template id, accept/reject)


@dataclass(frozen=True)
class Notice:
    key: ConversationKey
    delivery_id: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KfSessionClosed:
    """WeChat's 客服 system closed the session (``kf_close_session``): the bot answers again."""

    key: ConversationKey
    delivery_id: str


@dataclass(frozen=True)
class Ignored:
    key: ConversationKey
    delivery_id: str
    reason: str


Decision = ForEngine | MediaToFetch | ConsentChange | Notice | KfSessionClosed | Ignored

_UNSUPPORTED = {"voice": "unsupported_voice", "shortvideo": "unsupported_kind", "video": "unsupported_kind",
                "location": "unsupported_kind", "link": "unsupported_kind", "music": "unsupported_kind"}  # fmt: skip


def _text(message: dict[str, Any], name: str) -> str:
    value = message.get(name)
    return value.strip() if isinstance(value, str) else ""


def delivery_id(message: dict[str, Any]) -> str:
    msg_id = _text(message, "MsgId") or _text(message, "MsgID")
    if msg_id:
        return msg_id
    event = (
        f"{_text(message, 'FromUserName')}:{_text(message, 'CreateTime')}:{_text(message, 'Event').lower()}"
        f":{_text(message, 'EventKey')}"
    )
    # receipts keep 160 characters; a long EventKey (a QR scene) is kept as its digest
    return event if len(event) <= 160 else "ev:" + hashlib.sha256(event.encode()).hexdigest()


def decide(message: dict[str, Any], appid: str, *, expected_to: str | None = None) -> Decision:
    openid = _text(message, "FromUserName")
    msg_type = _text(message, "MsgType").lower()
    created = _text(message, "CreateTime")
    if not openid or len(openid) > 128 or not msg_type or not created.isdigit():
        raise RequestRejected("incomplete message", status=400)
    if expected_to is not None and _text(message, "ToUserName") != expected_to:
        raise RequestRejected("message for another account", status=403)
    key = ConversationKey("wechat", appid, openid)
    mid = delivery_id(message)
    at = datetime.fromtimestamp(int(created), UTC)
    if msg_type == "text":
        menu_choice = _text(message, "bizmsgmenuid")
        if menu_choice:
            # a tapped msgmenu item: its id is the option token we sent
            return ForEngine(Inbound.choice(key, mid, menu_choice, at=at), Interaction.MESSAGE)
        return ForEngine(
            Inbound.text_message(key, mid, _text(message, "Content"), at=at), Interaction.MESSAGE
        )
    if msg_type in ("image", "file"):
        media_id = _text(message, "MediaId")
        if not media_id:
            raise RequestRejected("media message without MediaId", status=400)
        name = _text(message, "Title") or f"{msg_type}_{mid}{'.jpg' if msg_type == 'image' else ''}"
        return MediaToFetch(key, mid, media_id, msg_type, name, at)
    if msg_type == "voice" and _text(message, "Recognition"):
        # speech recognition on: the words are as good as typed ones
        return ForEngine(
            Inbound.text_message(key, mid, _text(message, "Recognition"), at=at), Interaction.MESSAGE
        )
    if msg_type in _UNSUPPORTED:
        return Notice(key, mid, _UNSUPPORTED[msg_type], {"kind": msg_type})
    if msg_type == "event":
        return _event(message, key, mid, at)
    return Notice(key, mid, "unsupported_kind", {"kind": msg_type[:20]})


def _event(message: dict[str, Any], key: ConversationKey, mid: str, at: datetime) -> Decision:
    event = _text(message, "Event").lower()
    event_key = _text(message, "EventKey")
    if event == "subscribe":
        scene = event_key.removeprefix("qrscene_") if event_key.startswith("qrscene_") else ""
        inbound = (
            start_inbound(key, mid, scene, at=at) if scene else Inbound.command(key, mid, "start", at=at)
        )
        return ForEngine(inbound, Interaction.EVENT, welcome=True)
    if event == "scan":
        return ForEngine(start_inbound(key, mid, event_key, at=at), Interaction.EVENT)
    if event == "click":
        return ForEngine(start_inbound(key, mid, event_key, at=at), Interaction.EVENT)
    if event == "kf_close_session":
        return KfSessionClosed(key, mid)
    if event in ("subscribe_msg_popup_event", "subscribe_msg_change_event"):
        return ConsentChange(key, mid, tuple(_consents(message)))
    if event in ("unsubscribe", "view", "location", "view_miniprogram", "templatesendjobfinish",
                 "subscribe_msg_sent_event", "masssendjobfinish"):  # fmt: skip
        return Ignored(key, mid, f"event {event}")
    return Ignored(key, mid, f"unknown event {event[:40]}")


def _consents(message: dict[str, Any]) -> list[tuple[str, str]]:
    container = message.get("SubscribeMsgPopupEvent") or message.get("SubscribeMsgChangeEvent") or {}
    items = container.get("List", []) if isinstance(container, dict) else []
    if isinstance(items, dict):
        items = [items]
    result = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        template_id = item.get("TemplateId")
        status = item.get("SubscribeStatusString")
        if isinstance(template_id, str) and isinstance(status, str) and template_id.strip():
            result.append((template_id.strip()[:128], status.strip().lower()))
    return result
