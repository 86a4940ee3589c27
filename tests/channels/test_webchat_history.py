"""The web chat's history after a reload, merged from the outbox and the inbound receipts: each
of the user's messages sits before the replies it got, a message with no reply of its own sits
by time (never out of the receipts' order), taps show their labels, redaction markers show as
stored, and events are not the user's to see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.channels.webchat.history import merged_history
from bot.engine.messages import ConversationKey, FileRef, Option, Origin, OutboundMessage, Reply

KEY = ConversationKey("web", "main", "u")
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def bot(outbox_id: int, text: str, seconds: int, reply_to: str | None, *options: Option) -> OutboundMessage:
    return OutboundMessage(
        outbox_id,
        KEY,
        Reply.text_reply(text, tuple(options)),
        Origin.BOT,
        T0 + timedelta(seconds=seconds),
        reply_to,
    )


def entry(message_id: str, kind: str, seconds: int, **body: Any) -> dict[str, Any]:
    return {
        "id": 0,
        "message_id": message_id,
        "kind": kind,
        "body": body,
        "at": T0 + timedelta(seconds=seconds),
    }


def render(message: OutboundMessage) -> dict[str, Any]:
    return {"id": message.outbox_id, "origin": "bot", "text": message.reply.text}


def test_own_messages_sit_before_their_replies_and_unanswered_ones_by_time() -> None:
    scan = FileRef("abc123", "licence.png", "image/png", 10)
    messages = [
        bot(1, "菜单", 0, "w:1", Option("@go:apply", "申请企业印章")),
        bot(2, "请输入企业名称", 10, "w:2"),
        bot(3, "请输入信用代码", 20, "w:3"),
        bot(4, "客服：您好", 40, None),  # staff speak, in reply to nothing
        bot(5, "已收到", 60, "w:6"),
    ]
    entries = [
        entry("w:1", "text", 0, text="菜单"),
        entry("w:2", "choice", 10, text="@go:apply"),
        entry("w:3", "text", 20, text="北京示例科技有限公司"),
        entry("event:9", "event", 25, event={"id": "9", "type": "order.paid"}),
        entry("w:4", "text", 30, text="******"),  # no reply: staff own the chat
        entry("w:5", "file", 50, file=scan.to_dict()),  # no reply either
        entry("w:6", "text", 60, text="谢谢"),
        entry("w:7", "text", 70, text="还在吗"),  # the latest, not answered yet
    ]
    shown = [(m["origin"], m["text"]) for m in merged_history(messages, entries, render, complete=True)]
    assert shown == [
        ("user", "菜单"),
        ("bot", "菜单"),
        ("user", "申请企业印章"),  # the tap, as its label
        ("bot", "请输入企业名称"),
        ("user", "北京示例科技有限公司"),
        ("bot", "请输入信用代码"),
        ("user", "******"),  # as stored
        ("bot", "客服：您好"),
        ("user", ""),  # the upload
        ("user", "谢谢"),
        ("bot", "已收到"),
        ("user", "还在吗"),
    ]
    upload = merged_history(messages, entries, render, complete=True)[8]
    assert upload["kind"] == "image"
    assert upload["file"]["url"] == "/chat/api/media/abc123?name=licence.png"


def test_a_partial_page_leaves_later_own_messages_for_a_later_read_and_drops_unknown_taps() -> None:
    messages = [bot(1, "菜单", 0, "w:1")]
    entries = [
        entry("w:1", "choice", 0, text="@go:renew:abc"),  # a deep link: no label was ever shown
        entry("w:2", "text", 30, text="later"),
    ]
    assert [m["text"] for m in merged_history(messages, entries, render, complete=False)] == ["菜单"]
    assert [m["text"] for m in merged_history(messages, entries, render, complete=True)] == ["菜单", "later"]
