"""The whole service as ``sealbot serve`` builds it, on a free port, with WeChat and Telegram
switched on by their settings and pointed at the fake API servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from bot.app import create_app
from bot.channels.local_server import serve_locally
from bot.channels.telegram.fake_server import FakeTelegram
from bot.channels.telegram.fake_server import create_app as create_telegram_app
from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.fake_server import create_app as create_wechat_app
from bot.settings import Settings
from tests.browser.conftest import LiveService, free_port
from tests.channels.conftest import TG_SECRET, TG_TOKEN, WX_APPID, WX_SECRET, WX_TOKEN


@dataclass
class Wired(LiveService):
    wechat: FakeWeChat
    telegram: FakeTelegram

    @property
    def base(self) -> str:
        return self.url


@contextlib.asynccontextmanager
async def wired_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Wired]:
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
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        try:
            yield Wired(f"http://127.0.0.1:{port}", app, wechat, telegram)
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 20)
