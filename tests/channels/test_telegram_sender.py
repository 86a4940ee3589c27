"""The Telegram sender: flood control, pacing, rendering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.channels.telegram.render import SendDocument, SendPhoto, SendText, render, split_text, utf16_len
from bot.channels.telegram.sender import ChatPacer
from bot.engine.messages import ConversationKey, FileRef, Option, Origin, OutboundMessage, Reply, ReplyKind
from bot.engine.store import OutboxStatus
from bot.engine.tables import outbox
from bot.errors import DeliveryFailed
from tests.channels.conftest import TelegramRig

USER = 777003


def outbound(rig: TelegramRig, reply: Reply) -> OutboundMessage:
    key = ConversationKey("telegram", rig.fake.username, str(USER))
    return OutboundMessage(1, key, reply, Origin.BOT, datetime.now(UTC))


async def test_429_becomes_delivery_failed_with_retry_after(telegram: TelegramRig) -> None:
    telegram.fake.inject_429("sendMessage", retry_after=7)
    with pytest.raises(DeliveryFailed) as failure:
        await telegram.channel.sender.send(outbound(telegram, Reply.text_reply("hello")))
    assert failure.value.retryable
    assert failure.value.retry_after == 7
    await telegram.channel.sender.send(outbound(telegram, Reply.text_reply("hello")))
    assert telegram.fake.sent_texts(USER) == ["hello"]


async def test_outbox_honours_retry_after_from_a_429(telegram: TelegramRig) -> None:
    fake = telegram.fake
    fake.inject_429("sendMessage", retry_after=30)
    await telegram.post(fake.text_update(USER, "/start"))
    async with telegram.stack.store.engine.connect() as conn:
        row = (await conn.execute(outbox.select())).one()
    assert row.status == OutboxStatus.PENDING
    assert row.last_error == "telegram flood control"
    waited = row.next_attempt_at.replace(tzinfo=UTC) - row.created_at.replace(tzinfo=UTC)
    assert 29 <= waited.total_seconds() <= 31
    assert fake.sent_texts(USER) == []


async def test_blocked_user_is_not_retried(telegram: TelegramRig) -> None:
    sender = telegram.channel.sender
    reply = Reply.text_reply("hello")
    message = OutboundMessage(
        1, ConversationKey("telegram", "x", "999999"), reply, Origin.BOT, datetime.now(UTC)
    )

    async def forbidden(*_a: object, **_k: object) -> None:
        from telegram.error import Forbidden

        raise Forbidden("Forbidden: bot was blocked by the user")

    sender._call = forbidden  # type: ignore[method-assign]
    with pytest.raises(DeliveryFailed) as failure:
        await sender.send(message)
    assert not failure.value.retryable


async def test_images_and_files_are_uploaded_from_the_media_store(telegram: TelegramRig) -> None:
    media = telegram.stack.media
    png = await media.put(b"\x89PNG\r\n\x1a\n" + b"\x02" * 50, filename="qr.png", content_type="image/png")
    pdf = await media.put(b"%PDF-1.4 invoice", filename="invoice.pdf", content_type="application/pdf")
    await telegram.channel.sender.send(outbound(telegram, Reply(ReplyKind.IMAGE, text="Pay here", file=png)))
    await telegram.channel.sender.send(outbound(telegram, Reply(ReplyKind.FILE, text="Invoice", file=pdf)))
    (photo,) = telegram.fake.calls_of("sendPhoto")
    (document,) = telegram.fake.calls_of("sendDocument")
    assert photo.files["photo"] == await media.get(png.media_id)
    assert photo.params["caption"] == "Pay here"
    assert document.files["document"] == b"%PDF-1.4 invoice"


async def test_pacer_spaces_messages_to_one_chat_but_not_across_chats() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = ChatPacer(1.0, monotonic=lambda: now[0], sleep=sleep)
    await pacer.wait_turn(1)
    now[0] += 0.25
    await pacer.wait_turn(1)
    await pacer.wait_turn(2)
    assert slept == [pytest.approx(0.75)]


def test_long_text_is_split_within_telegram_limit_with_the_keyboard_on_the_last_part() -> None:
    paragraph = "申请电子印章需要营业执照。" * 100
    text = "\n\n".join([paragraph] * 5)
    ops = render(Reply.text_reply(text, (Option("1.2.a", "A"), Option("@cancel", "Cancel"))))
    assert len(ops) > 1
    assert all(isinstance(op, SendText) and utf16_len(op.text) <= 4096 for op in ops)
    assert all(isinstance(op, SendText) and op.keyboard is None for op in ops[:-1])
    last = ops[-1]
    assert isinstance(last, SendText)
    assert last.keyboard is not None
    rows = last.keyboard.inline_keyboard
    assert [b.callback_data for b in rows[0]] == ["1.2.a"]
    assert [b.callback_data for b in rows[-1]] == ["@cancel"]  # navigation on its own row
    assert "".join(op.text for op in ops if isinstance(op, SendText)).replace("\n", "") == text.replace(
        "\n", ""
    )


def test_split_counts_utf16_units_for_emoji() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units
    parts = split_text(text)
    assert len(parts) == 2
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert "".join(parts) == text


def test_token_too_long_for_callback_data_falls_back_to_a_numbered_line() -> None:
    long_token = "x" * 70
    (op,) = render(Reply.text_reply("Pick:", (Option("ok", "Fine"), Option(long_token, "Long one"))))
    assert isinstance(op, SendText)
    assert "2. Long one" in op.text
    assert op.keyboard is not None
    assert [b.callback_data for row in op.keyboard.inline_keyboard for b in row] == ["ok"]


def test_files_render_as_photo_or_document() -> None:
    ref = FileRef("a" * 64, "x.pdf", "application/pdf", 10)
    assert isinstance(render(Reply(ReplyKind.FILE, text="c", file=ref))[0], SendDocument)
    assert isinstance(render(Reply(ReplyKind.IMAGE, text="c", file=ref))[0], SendPhoto)
