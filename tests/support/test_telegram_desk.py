"""The Telegram staff group desk, round-tripped through the fake Bot API with the real library."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from telegram import Bot, Update

from bot.channels.local_server import serve_locally
from bot.channels.telegram.fake_server import FakeTelegram, create_app
from bot.engine.state import Owner
from bot.support.conversation_view import transcript_of
from bot.support.telegram_desk import TelegramDesk
from tests.engine.transcript import ZH, fill_form
from tests.support.conftest import DeskRig

TOKEN = "4242:desk-token"
STAFF_GROUP = -1001234567890
_ids = itertools.count(5000)


@dataclass
class DeskOnTelegram:
    fake: FakeTelegram
    bot: Bot
    telegram: TelegramDesk
    rig: DeskRig

    def thread_posts(self, thread_id: int) -> list[str]:
        return [
            str(c.params.get("text", ""))
            for c in self.fake.calls_of("sendMessage")
            if c.params.get("chat_id") == STAFF_GROUP and c.params.get("message_thread_id") == thread_id
        ]

    def topic_id(self) -> int:
        [created] = self.fake.calls_of("createForumTopic")
        assert isinstance(created.result, dict)
        return int(created.result["message_thread_id"])

    async def staff_writes(
        self, thread_id: int, text: str, *, username: str = "wang", **extra: Any
    ) -> Update:
        return await self.deliver(self.group_update(thread_id, {"text": text}, username=username, **extra))

    def group_update(
        self, thread_id: int, content: dict[str, Any], *, username: str = "wang", **extra: Any
    ) -> Update:
        message: dict[str, Any] = {
            "message_id": next(_ids),
            "date": int(time.time()),
            "chat": {"id": STAFF_GROUP, "type": "supergroup", "title": "客服组", "is_forum": True},
            "from": {"id": 777, "is_bot": False, "first_name": "Wang", "username": username},
            "message_thread_id": thread_id,
            "is_topic_message": True,
            **content,
        }
        if str(content.get("text", "")).startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(content["text"].split()[0])}
            ]
        return Update.de_json({"update_id": extra.get("update_id", next(_ids)), "message": message}, self.bot)

    async def deliver(self, update: Update) -> Update:
        assert await self.telegram.handle_group_update(update)
        await self.rig.settle()
        return update


@pytest.fixture
async def desk_on_telegram(rig: DeskRig) -> AsyncIterator[DeskOnTelegram]:
    fake = FakeTelegram(TOKEN)
    async with serve_locally(create_app(fake)) as base:
        bot = Bot(TOKEN, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")
        await bot.initialize()
        telegram = TelegramDesk(bot=bot, chat_id=STAFF_GROUP, desk=rig.desk)
        rig.desk.relays.append(telegram)
        yield DeskOnTelegram(fake, bot, telegram, rig)
        await bot.shutdown()


async def test_a_handoff_opens_a_topic_and_the_users_words_are_mirrored_there(
    desk_on_telegram: DeskOnTelegram,
) -> None:
    tg, rig = desk_on_telegram, desk_on_telegram.rig
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")
    await rig.chat.say("我的执照被驳回了")

    [created] = tg.fake.calls_of("createForumTopic")
    assert created.params["chat_id"] == STAFF_GROUP
    assert created.params["name"] == "test · u1"
    thread = tg.topic_id()
    assert tg.thread_posts(thread) == ["🆕 用户请求人工客服：测试表单 / age", "👤 我的执照被驳回了"]
    # One topic per conversation, whatever happens later.
    await rig.chat.say("还在吗")
    assert len(tg.fake.calls_of("createForumTopic")) == 1


async def test_a_staff_reply_in_the_topic_claims_the_conversation_and_reaches_the_user(
    desk_on_telegram: DeskOnTelegram,
) -> None:
    tg, rig = desk_on_telegram, desk_on_telegram.rig
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")
    thread = tg.topic_id()

    update = await tg.staff_writes(thread, "您好，请重新上传营业执照。")

    assert await rig.owner() == Owner.staff("tg:wang")
    assert rig.chat.transcript()[-2:] == ["人工客服已接入，请直接在这里留言。", "您好，请重新上传营业执照。"]
    assert "✅ tg:wang 已接入" in tg.thread_posts(thread)
    # The staff message is not echoed back into its own topic.
    assert not any("请重新上传营业执照" in post for post in tg.thread_posts(thread))
    # Telegram redelivers the update: the user still gets it once.
    sent = len(rig.chat.sender.sent)
    await tg.deliver(update)
    assert len(rig.chat.sender.sent) == sent
    # Another staff member in the topic cannot talk over the first.
    await tg.staff_writes(thread, "我也来回答", username="li")
    assert rig.chat.transcript()[-1] == "您好，请重新上传营业执照。"
    assert tg.thread_posts(thread)[-1] == "⛔ 已由 tg:wang 接入，消息未发送。"


async def test_console_replies_are_mirrored_and_handback_from_the_topic_resumes_the_flow(
    desk_on_telegram: DeskOnTelegram,
) -> None:
    tg, rig = desk_on_telegram, desk_on_telegram.rig
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")
    thread = tg.topic_id()
    await rig.desk.claim(rig.key(), "alice")
    await rig.desk.reply_text(rig.key(), "alice", "请问哪一步有问题？")
    assert "💬 alice：请问哪一步有问题？" in tg.thread_posts(thread)
    await rig.desk.release(rig.key(), "alice")

    await tg.staff_writes(thread, "/claim")
    await tg.staff_writes(thread, "/handback")

    assert await rig.owner() == Owner.BOT
    assert rig.chat.transcript()[-2:] == [
        "客服已将您转回智能助手，我们从您刚才的步骤继续。",
        ZH.step(4, 7, ZH.ask_age),
    ]
    assert tg.thread_posts(thread)[-1] == "🤖 已交还智能助手（handed_back）"


async def test_a_topic_closed_by_staff_reopens_when_the_user_writes(desk_on_telegram: DeskOnTelegram) -> None:
    tg, rig = desk_on_telegram, desk_on_telegram.rig
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")
    thread = tg.topic_id()
    await tg.staff_writes(thread, "稍等")
    await tg.deliver(tg.group_update(thread, {"forum_topic_closed": {}}))
    assert tg.fake.calls_of("reopenForumTopic") == []

    await rig.chat.say("好的，我等着")

    [reopened] = tg.fake.calls_of("reopenForumTopic")
    assert (reopened.params["chat_id"], reopened.params["message_thread_id"]) == (STAFF_GROUP, thread)
    assert tg.thread_posts(thread)[-1] == "👤 好的，我等着"
    # Open now: the next message needs no reopening.
    await rig.chat.say("谢谢")
    assert len(tg.fake.calls_of("reopenForumTopic")) == 1


async def test_updates_from_other_chats_are_left_to_the_channel(desk_on_telegram: DeskOnTelegram) -> None:
    tg = desk_on_telegram
    private = tg.fake.text_update(12345, "你好")
    assert not await tg.telegram.handle_group_update(Update.de_json(private, tg.bot))


async def test_an_id_number_in_free_text_is_masked_alike_in_the_topic_and_the_console(
    desk_on_telegram: DeskOnTelegram,
) -> None:
    tg, rig = desk_on_telegram, desk_on_telegram.rig
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")
    await rig.chat.say("我的身份证号是110101199003074477，手机13812345678")
    thread = tg.topic_id()
    masked = "我的身份证号是110*************77，手机138******78"
    assert tg.thread_posts(thread)[-1] == f"👤 {masked}"
    lines = await transcript_of(rig.chat.store, rig.key())
    assert [line.text for line in lines if line.who == "user"][-1] == masked
