"""The Telegram channel end to end: python-telegram-bot against the fake Bot API server,
webhook updates through our ASGI router, replies through the outbox and the real sender."""

from __future__ import annotations

import asyncio

from bot.engine.messages import ConversationKey
from tests.channels.conftest import TelegramRig

USER = 777001
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.4\n" + b"0" * 300 + b"\n%%EOF"


def key(rig: TelegramRig, user: int = USER) -> ConversationKey:
    return ConversationKey("telegram", rig.fake.username, str(user))


async def tap(rig: TelegramRig, label: str, user: int = USER) -> int:
    message_id, data = rig.fake.button(user, label)
    return await rig.post(rig.fake.callback_update(user, data, message_id=message_id))


async def say(rig: TelegramRig, text: str, user: int = USER) -> int:
    return await rig.post(rig.fake.text_update(user, text))


async def test_whole_form_runs_through_telegram_with_buttons_and_a_document(telegram: TelegramRig) -> None:
    fake = telegram.fake
    assert await say(telegram, "/start") == 200
    assert await tap(telegram, "Test form") == 200  # the menu is an inline keyboard
    assert fake.sent_texts(USER)[-1].endswith("Your name:")
    await say(telegram, "Wang Fang")
    await tap(telegram, "Company")
    await say(telegram, "Acme Ltd")
    await say(telegram, "30")
    await say(telegram, "110105194912310021")
    assert await telegram.post(fake.document_update(USER, PDF, "licence.pdf", "application/pdf")) == 200
    summary = fake.sent_texts(USER)[-1]
    assert "Wang Fang" in summary
    assert "Acme Ltd" in summary
    await tap(telegram, "submit")
    row = await telegram.stack.store.get(key(telegram))
    assert row is not None
    assert row.state["run"]["step"] == "payment"
    # every tapped keyboard was answered and retired
    assert len(fake.calls_of("answerCallbackQuery")) == 3
    assert len(fake.edited_markups) == 3


async def test_document_upload_is_downloaded_through_get_file_into_the_media_store(
    telegram: TelegramRig,
) -> None:
    fake = telegram.fake
    await say(telegram, "/form")
    for answer in ("Li Lei",):
        await say(telegram, answer)
    await tap(telegram, "Person")
    await say(telegram, "41")
    await say(telegram, "110105194912310021")
    await telegram.post(fake.document_update(USER, PDF, "scan.pdf", "application/pdf"))
    assert [c.params["file_id"] for c in fake.calls_of("getFile")]
    stored = list(telegram.stack.media.files.values())
    assert stored == [PDF]
    row = await telegram.stack.store.get(key(telegram))
    assert row is not None
    assert row.state["run"]["answers"]["scan"][0]["content_type"] == "application/pdf"


async def test_photo_upload_takes_the_largest_size(telegram: TelegramRig) -> None:
    fake = telegram.fake
    await say(telegram, "/form")
    await say(telegram, "Li Lei")
    await tap(telegram, "Person")
    await say(telegram, "41")
    await say(telegram, "110105194912310021")
    await telegram.post(fake.photo_update(USER, PNG))
    (call,) = fake.calls_of("getFile")
    assert not str(call.params["file_id"]).endswith("s")  # not the thumbnail
    assert PNG in telegram.stack.media.files.values()


async def test_callback_on_an_old_button_is_answered_and_explained(telegram: TelegramRig) -> None:
    fake = telegram.fake
    await say(telegram, "/form")
    await say(telegram, "Li Lei")
    old_message, old_data = fake.button(USER, "Company")
    await tap(telegram, "Company")
    await say(telegram, "Acme")
    row_before = await telegram.stack.store.get(key(telegram))
    assert await telegram.post(fake.callback_update(USER, old_data, message_id=old_message)) == 200
    answered = fake.calls_of("answerCallbackQuery")
    assert len(answered) == 2
    assert "expired" in fake.sent_texts(USER)[-2]
    assert "age" in fake.sent_texts(USER)[-1]  # and the current question again
    row_after = await telegram.stack.store.get(key(telegram))
    assert row_before is not None
    assert row_after is not None
    assert row_after.state["run"]["answers"] == row_before.state["run"]["answers"]


async def test_a_redelivered_update_has_one_effect(telegram: TelegramRig) -> None:
    fake = telegram.fake
    update = fake.text_update(USER, "/start")
    for _ in range(3):
        assert await telegram.post(update) == 200
    assert len(fake.calls_of("sendMessage")) == 1
    log = await telegram.stack.store.inbound_log(key(telegram), 10)
    assert [entry["message_id"] for entry in log] == [f"u{update['update_id']}"]


async def test_redelivery_after_a_restart_is_still_deduplicated_by_the_engine(telegram: TelegramRig) -> None:
    fake = telegram.fake
    update = fake.text_update(USER, "/start")
    await telegram.post(update)
    telegram.channel.processor.recent.__init__()  # a new process remembers nothing
    await telegram.post(update)
    assert len(fake.calls_of("sendMessage")) == 1


async def test_deep_link_start_payload_opens_the_named_flow(telegram: TelegramRig) -> None:
    await say(telegram, "/start form")
    assert "name" in telegram.fake.sent_texts(USER)[-1].lower()


async def test_deep_link_with_an_argument_prefills_it(telegram: TelegramRig) -> None:
    await say(telegram, "/start form-S2024001")
    row = await telegram.stack.store.get(key(telegram))
    assert row is not None
    assert row.state["run"]["answers"]["_arg"] == "S2024001"


async def test_forged_deep_link_shows_the_menu(telegram: TelegramRig) -> None:
    await say(telegram, "/start ../../etc/passwd")
    assert telegram.fake.button(USER, "Test form")


async def test_long_polling_picks_up_updates_from_get_updates(telegram: TelegramRig) -> None:
    fake = telegram.fake
    fake.queue_update(fake.text_update(USER, "/start"))
    fake.queue_update(fake.text_update(USER + 1, "/start"))
    handled = await telegram.channel.poller.poll_once()
    await telegram.stack.dispatcher.drain()
    assert handled == 2
    assert fake.sent_texts(USER)
    assert fake.sent_texts(USER + 1)
    # the next round confirms the offset: nothing is handled twice
    assert await telegram.channel.poller.poll_once() == 0
    assert fake.pending == []


async def test_polling_waits_for_updates_that_arrive_during_the_long_poll(telegram: TelegramRig) -> None:
    fake = telegram.fake
    telegram.channel.poller.timeout = 5

    async def later() -> None:
        await asyncio.sleep(0.2)
        fake.queue_update(fake.text_update(USER, "/start"))

    arrival = asyncio.create_task(later())
    assert await telegram.channel.poller.poll_once() == 1
    await arrival


async def test_register_sets_webhook_with_secret_and_commands(telegram: TelegramRig) -> None:
    done = await telegram.channel.register()
    fake = telegram.fake
    assert fake.webhook_url == "https://bot.example.com/telegram/hook-path"
    assert fake.webhook_secret == "webhook-secret-value"
    assert [c["command"] for c in fake.commands[""]] == ["start", "menu", "help", "cancel"]
    assert fake.commands["en"][0]["description"] == "Start / main menu"
    assert any("webhook set" in line for line in done)


async def test_health_reports_token_webhook_and_pending_updates(telegram: TelegramRig) -> None:
    fake = telegram.fake
    before = await telegram.channel.health()
    assert before.token_valid
    assert not before.webhook_set
    await telegram.channel.register()
    fake.pending.append(fake.text_update(USER, "hi"))
    after = await telegram.channel.health()
    assert after.webhook_set
    assert after.pending_updates == 1
    assert "valid" in after.lines()[0]
