from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import SecretStr

from bot.channels.local_server import serve_locally
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.fake_server import FakeTelegram, create_app
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.wechat.channel import WeChatChannel, passive_window_for
from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.fake_server import create_app as create_wechat_app
from bot.channels.wechat.settings import WeChatSettings
from bot.engine.store import Clock, OutboxStatus
from bot.engine.tables import outbox
from tests.channels.flows import SLOW
from tests.channels.support import Stack, build_stack
from tests.channels.wechat_server import WeChatServer
from tests.engine.flows_for_tests import FORM

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
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        yield TelegramRig(fake, channel, stack, client)
    await channel.shutdown()


# ---- WeChat ---------------------------------------------------------------------------------

WX_APPID = "wx1234567890abcdef"
WX_SECRET = "wx-app-secret"
WX_TOKEN = "callback-token"
WX_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
# generous against a loaded test machine; the slow flow (tests/channels/flows.py) exceeds them
PASSIVE_HOLD = 2.0
PASSIVE_BUDGET = 1.5
# WeChat's own budget (4.5 s), for tests that read what a passive reply carries or hands over
# and are not about the deadline: with 1.5 s a loaded machine answers "success" instead.
PATIENT = {"passive_budget": 4.5, "passive_hold": 5.0}


@pytest.fixture
async def fake_wechat() -> AsyncIterator[tuple[FakeWeChat, str]]:
    fake = FakeWeChat(WX_APPID, WX_SECRET)
    async with serve_locally(create_wechat_app(fake)) as base:
        yield fake, base


def wechat_settings(base: str, **overrides: object) -> WeChatSettings:
    values: dict[str, object] = {
        "enabled": True,
        "appid": WX_APPID,
        "secret": SecretStr(WX_SECRET),
        "token": SecretStr(WX_TOKEN),
        "api_base_url": f"{base}/cgi-bin/",
        "public_url": "https://bot.example.com",
        "passive_hold": PASSIVE_HOLD,
        "passive_budget": PASSIVE_BUDGET,
        "max_media_bytes": 64 * 1024,
        "max_body_bytes": 16 * 1024,
    }
    values.update(overrides)
    return WeChatSettings(**values)  # type: ignore[arg-type]


@dataclass
class WeChatRig:
    fake: FakeWeChat
    channel: WeChatChannel
    stack: Stack
    client: httpx.AsyncClient
    server: WeChatServer

    async def deliver(self, xml: str, **sign: object) -> httpx.Response:
        callback = self.server.sign(xml, **sign)  # type: ignore[arg-type]
        return await self.client.post("/wechat", params=callback.query, content=callback.body)

    async def settle(self) -> None:
        """Let background work finish and held replies go out through the outbox."""
        await self.channel.drain_background()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PASSIVE_HOLD + 1.0
        while loop.time() < deadline:
            await self.stack.dispatcher.drain()
            await self.channel.drain_background()
            async with self.stack.store.engine.connect() as conn:
                waiting = (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(outbox)
                        .where(outbox.c.status == OutboxStatus.PENDING)
                    )
                ).scalar()
            if not waiting:
                return
            await asyncio.sleep(0.05)


async def _wechat_rig(
    db_url: str,
    fake_wechat: tuple[FakeWeChat, str],
    clock: Clock | None = None,
    *,
    embedded: bool = False,
    **overrides: object,
) -> AsyncIterator[WeChatRig]:
    fake, base = fake_wechat
    settings = wechat_settings(base, **overrides)
    built = await build_stack(
        db_url, flows=(FORM, SLOW), passive_windows=[passive_window_for(settings)], embedded=embedded
    )
    channel = WeChatChannel(
        settings=settings,
        engine=built.engine,
        store=built.store,
        db=built.store.engine,
        media=built.media,
        clock=clock,
    )
    await channel.initialize()
    built.dispatcher.senders[channel.sender.channel] = channel.sender
    app = FastAPI()
    app.include_router(channel.router)
    server = WeChatServer(
        token=WX_TOKEN, appid=WX_APPID, aes_key=settings.encoding_aes_key.get_secret_value() or None
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        yield WeChatRig(fake, channel, built, client, server)
    await channel.shutdown()
    await built.close()


@pytest.fixture
async def wechat(db_url: str, fake_wechat: tuple[FakeWeChat, str]) -> AsyncIterator[WeChatRig]:
    async for rig in _wechat_rig(db_url, fake_wechat):
        yield rig


@pytest.fixture
async def wechat_safe(db_url: str, fake_wechat: tuple[FakeWeChat, str]) -> AsyncIterator[WeChatRig]:
    async for rig in _wechat_rig(db_url, fake_wechat, encoding_aes_key=SecretStr(WX_AES_KEY)):
        yield rig
