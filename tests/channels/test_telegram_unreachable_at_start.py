"""A Bot API that does not answer when the service starts (api.telegram.org unreachable from the
host's network, a local Bot API server still starting) does not stop the service: the channel
starts, its webhook asks Telegram to deliver again later (503, nothing lost), and once the API
answers the channel is on by itself, in webhook and in polling mode. A refused token still
stops the start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from telegram.error import InvalidToken

from bot.channels.local_server import free_port, serve_locally
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.fake_server import FakeTelegram, create_app
from bot.engine.messages import ConversationKey
from tests.channels.conftest import TG_SECRET, TG_TOKEN, Stack, telegram_settings

USER = 777002


async def wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - the channel's readiness is a property, not an event
            await asyncio.sleep(0.05)


async def test_the_channel_starts_without_the_bot_api_and_takes_updates_once_it_answers(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"  # nothing listens here yet
    channel = TelegramChannel(
        settings=telegram_settings(base), engine=stack.engine, store=stack.store, media=stack.media
    )
    stack.dispatcher.senders[channel.sender.channel] = channel.sender
    app = FastAPI()
    app.include_router(channel.router)
    fake = FakeTelegram(TG_TOKEN)
    update = fake.text_update(USER, "/start")
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    with caplog.at_level(logging.WARNING, logger="sealbot.telegram"):
        await channel.initialize()  # does not raise
    assert any("does not answer" in r.getMessage() for r in caplog.records)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            # Telegram is told to deliver again later; nothing is handled or lost meanwhile
            assert (await client.post("/telegram/hook-path", json=update, headers=headers)).status_code == 503
            assert await stack.store.get(ConversationKey("telegram", fake.username, str(USER))) is None
            # a caller without the secret is still refused as such
            assert (await client.post("/telegram/hook-path", json=update)).status_code == 403
            async with serve_locally(create_app(fake), port=port):
                await wait_until(lambda: channel.processor.ready)
                # the same update, delivered again by Telegram, is handled and answered
                assert (
                    await client.post("/telegram/hook-path", json=update, headers=headers)
                ).status_code == 200
                await stack.dispatcher.drain()
                assert fake.sent_texts(USER)
    finally:
        await channel.shutdown()


async def test_polling_starts_once_the_bot_api_answers(stack: Stack) -> None:
    port = free_port()
    channel = TelegramChannel(
        settings=telegram_settings(f"http://127.0.0.1:{port}", mode="polling"),
        engine=stack.engine,
        store=stack.store,
        media=stack.media,
    )
    stack.dispatcher.senders[channel.sender.channel] = channel.sender
    await channel.initialize()
    fake = FakeTelegram(TG_TOKEN)
    try:
        async with serve_locally(create_app(fake), port=port):
            fake.queue_update(fake.text_update(USER, "/start"))
            await wait_until(lambda: bool(fake.calls_of("getUpdates")))
            assert fake.calls_of("deleteWebhook")  # polling took over from any webhook

            async def answered() -> bool:
                await stack.dispatcher.drain()
                return bool(fake.sent_texts(USER))

            async with asyncio.timeout(20):
                while not await answered():  # noqa: ASYNC110 - the fake records calls, it signals nothing
                    await asyncio.sleep(0.05)
    finally:
        await channel.shutdown()


async def test_a_token_the_bot_api_refuses_still_stops_the_start_up(
    stack: Stack, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    _fake, base = fake_telegram
    channel = TelegramChannel(
        settings=telegram_settings(base, token="999:not-the-token"),
        engine=stack.engine,
        store=stack.store,
        media=stack.media,
    )
    with pytest.raises(InvalidToken):
        await channel.initialize()
    await channel.shutdown()
