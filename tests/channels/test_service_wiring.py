"""The whole service as ``sealbot serve`` builds it, with WeChat and Telegram switched on by
their settings and pointed at the fake API servers: both reach the real account flows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.channels.telegram.fake_server import FakeTelegram
from bot.channels.wechat.fake_server import FakeWeChat
from tests.channels.conftest import TG_SECRET, WX_APPID, WX_TOKEN
from tests.channels.wechat_server import WeChatServer
from tests.wired_service import wired_service


@pytest.fixture
async def service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, FakeWeChat, FakeTelegram]]:
    async with wired_service(tmp_path, monkeypatch) as wired:
        yield wired.base, wired.wechat, wired.telegram


async def eventually(check: object, seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_a_wechat_user_reaches_registration_through_the_wired_service(
    service: tuple[str, FakeWeChat, FakeTelegram],
) -> None:
    base, wechat, _ = service
    signer = WeChatServer(token=WX_TOKEN, appid=WX_APPID)
    callback = signer.sign(signer.text("openid-1", "注册"))
    async with httpx.AsyncClient(base_url=base) as http:
        answer = await http.post("/wechat", params=callback.query, content=callback.body, timeout=15)
    assert answer.status_code == 200
    reply = signer.read_reply(answer.text)
    texts = [reply.get("Content", "")] if reply else []

    def asked_for_phone() -> bool:
        sent = texts + [str(m) for m in wechat.customer_messages("openid-1")]
        return any("手机号" in text for text in sent)

    await eventually(asked_for_phone)


async def test_a_telegram_user_gets_the_menu_through_the_wired_service(
    service: tuple[str, FakeWeChat, FakeTelegram],
) -> None:
    base, _, telegram = service
    async with httpx.AsyncClient(base_url=base) as http:
        refused = await http.post("/telegram/hook-path", json=telegram.text_update(7, "/start"))
        assert refused.status_code in (401, 403)
        accepted = await http.post(
            "/telegram/hook-path",
            json=telegram.text_update(7, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
        )
        assert accepted.status_code == 200
    # the fake user's Telegram language is English, so the menu comes in English
    await eventually(lambda: any("e-seal assistant" in text for text in telegram.sent_texts(7)))


STAFF_GROUP = -1001234567890


async def test_the_support_desk_is_wired_into_both_channels_when_the_service_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The desk and the channels need each other: the composition root builds the desk first
    (on the Telegram bot and the WeChat quota) and gives the channels its hooks at construction.
    A WeChat hand-off goes to WeChat's own 客服 when chosen; a staff reply in the Telegram staff
    group's topic reaches the Telegram user."""
    monkeypatch.setenv("SUPPORT_WECHAT_KF_TRANSFER", "true")
    monkeypatch.setenv("SUPPORT_TELEGRAM_DESK_CHAT_ID", str(STAFF_GROUP))
    async with wired_service(tmp_path, monkeypatch) as wired:
        signer = WeChatServer(token=WX_TOKEN, appid=WX_APPID)
        callback = signer.sign(signer.text("openid-kf", "人工"))
        async with httpx.AsyncClient(base_url=wired.base) as http:
            answer = await http.post("/wechat", params=callback.query, content=callback.body, timeout=15)
            reply = signer.read_reply(answer.text)
            assert reply is not None
            assert reply["MsgType"] == "transfer_customer_service"

            telegram = wired.telegram
            secret = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
            await http.post("/telegram/hook-path", json=telegram.text_update(7, "人工"), headers=secret)
            await eventually(lambda: bool(telegram.calls_of("createForumTopic")))
            [created] = telegram.calls_of("createForumTopic")
            assert isinstance(created.result, dict)
            staff_reply = {
                "update_id": telegram.next_update_id(),
                "message": {
                    "message_id": 9001,
                    "date": 1_790_000_000,
                    "chat": {"id": STAFF_GROUP, "type": "supergroup", "title": "客服组", "is_forum": True},
                    "from": {"id": 777, "is_bot": False, "first_name": "Wang", "username": "wang"},
                    "message_thread_id": created.result["message_thread_id"],
                    "is_topic_message": True,
                    "text": "您好，我是客服小王",
                },
            }
            accepted = await http.post("/telegram/hook-path", json=staff_reply, headers=secret)
            assert accepted.status_code == 200
        await eventually(lambda: any("我是客服小王" in text for text in telegram.sent_texts(7)))
