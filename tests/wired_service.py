"""The whole service as ``sealbot serve`` builds it, on a free port, with WeChat and Telegram
switched on by their settings and pointed at the fake API servers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import create_app
from bot.channels.local_server import serve_locally
from bot.channels.telegram.fake_server import FakeTelegram
from bot.channels.telegram.fake_server import create_app as create_telegram_app
from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.fake_server import create_app as create_wechat_app
from tests.channels.conftest import TG_SECRET, TG_TOKEN, WX_APPID, WX_SECRET, WX_TOKEN
from tests.fixtures.served import LiveService, free_port, serve_in_loop, service_settings


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
        app = create_app(service_settings(tmp_path, port))
        async with serve_in_loop(app, port) as base:
            yield Wired(base, app, wechat, telegram)
