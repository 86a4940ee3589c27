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
