"""The whole service as ``sealbot serve`` builds it, with WeChat and Telegram switched on by
their settings and pointed at the fake API servers: both reach the real account flows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from bot.app import create_app
from bot.channels.local_server import serve_locally
from bot.channels.telegram.fake_server import FakeTelegram
from bot.channels.telegram.fake_server import create_app as create_telegram_app
from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.fake_server import create_app as create_wechat_app
from bot.settings import Settings
from tests.browser.conftest import free_port
from tests.channels.conftest import TG_SECRET, TG_TOKEN, WX_APPID, WX_SECRET, WX_TOKEN
from tests.channels.wechat_server import WeChatServer


@pytest.fixture
async def service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, FakeWeChat, FakeTelegram]]:
    wechat, telegram = FakeWeChat(WX_APPID, WX_SECRET), FakeTelegram(TG_TOKEN)
    async with (
        serve_locally(create_wechat_app(wechat)) as wechat_base,
        serve_locally(create_telegram_app(telegram)) as telegram_base,
    ):
        env = {
            "WECHAT_ENABLED": "true",
            "WECHAT_APPID": WX_APPID,
            "WECHAT_SECRET": WX_SECRET,
            "WECHAT_TOKEN": WX_TOKEN,
            "WECHAT_API_BASE_URL": f"{wechat_base}/cgi-bin/",
            "WECHAT_PUBLIC_URL": "https://bot.example.com",
            "TELEGRAM_ENABLED": "true",
            "TELEGRAM_TOKEN": TG_TOKEN,
            "TELEGRAM_API_BASE_URL": f"{telegram_base}/bot",
            "TELEGRAM_FILE_BASE_URL": f"{telegram_base}/file/bot",
            "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
            "TELEGRAM_WEBHOOK_PATH": "hook-path",
            "TELEGRAM_PUBLIC_URL": "https://bot.example.com",
            "TELEGRAM_PER_CHAT_INTERVAL": "0",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        port = free_port()
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
            data_dir=tmp_path / "var",
            port=port,
            public_base_url=f"http://127.0.0.1:{port}",
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", wechat, telegram
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 20)


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
