from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from bot.channels.local_server import serve_locally
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.fake_server import FakeTelegram, create_app
from bot.channels.telegram.settings import TelegramSettings
from tests.channels.support import Stack, build_stack

TG_TOKEN = "4242:test-token"
TG_SECRET = "webhook-secret-value"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/bot.db"


@pytest.fixture
async def stack(db_url: str) -> AsyncIterator[Stack]:
    built = await build_stack(db_url)
    yield built
    await built.close()


@pytest.fixture
async def fake_telegram() -> AsyncIterator[tuple[FakeTelegram, str]]:
    fake = FakeTelegram(TG_TOKEN)
    async with serve_locally(create_app(fake)) as base:
        yield fake, base


def telegram_settings(base: str, **overrides: object) -> TelegramSettings:
    values: dict[str, object] = {
        "enabled": True,
        "token": SecretStr(TG_TOKEN),
        "api_base_url": f"{base}/bot",
        "file_base_url": f"{base}/file/bot",
        "webhook_secret": SecretStr(TG_SECRET),
        "webhook_path": "hook-path",
        "public_url": "https://bot.example.com",
        "per_chat_interval": 0.0,
        "max_file_bytes": 64 * 1024,
        "polling_timeout": 0,
    }
    values.update(overrides)
    return TelegramSettings(**values)  # type: ignore[arg-type]


@dataclass
class TelegramRig:
    fake: FakeTelegram
    channel: TelegramChannel
    stack: Stack
    client: httpx.AsyncClient

    async def post(self, update: object, *, secret: str | None = TG_SECRET, path: str = "hook-path") -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        response = await self.client.post(f"/telegram/{path}", json=update, headers=headers)
        await self.stack.dispatcher.drain()
        return response.status_code


@pytest.fixture
async def telegram(stack: Stack, fake_telegram: tuple[FakeTelegram, str]) -> AsyncIterator[TelegramRig]:
    fake, base = fake_telegram
    channel = TelegramChannel(
        settings=telegram_settings(base), engine=stack.engine, store=stack.store, media=stack.media
    )
    await channel.initialize()
    stack.dispatcher.senders[channel.sender.channel] = channel.sender
    app = FastAPI()
    app.include_router(channel.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield TelegramRig(fake, channel, stack, client)
    await channel.shutdown()
