"""Bodies no JSON parser should trust: nested deeper than it can follow, NaN and Infinity, huge
values. A 4xx that does not echo the input, nothing stored, the next message answered."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from bot.channels.http_errors import install_input_refusals
from bot.channels.webchat import WebChatChannel
from bot.engine.messages import ConversationKey
from tests.channels.conftest import TG_SECRET, TelegramRig
from tests.channels.support import Stack

HEADERS = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}


async def test_telegram_refuses_a_deeply_nested_body_with_400(telegram: TelegramRig) -> None:
    response = await telegram.client.post("/telegram/hook-path", content=b"[" * 100_000, headers=HEADERS)
    assert response.status_code == 400
    assert await telegram.post(telegram.fake.text_update(5001, "/start")) == 200
    assert telegram.fake.sent_texts(5001)


async def test_telegram_refuses_nan_and_infinity_with_422(telegram: TelegramRig) -> None:
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"update_id": 1, "message": {"x": ' + constant + b"}}"
        response = await telegram.client.post("/telegram/hook-path", content=body, headers=HEADERS)
        assert response.status_code == 422
    key = ConversationKey("telegram", telegram.channel.processor.account, "5002")
    assert await telegram.stack.store.get(key) is None


async def _webchat(stack: Stack) -> tuple[httpx.AsyncClient, WebChatChannel]:
    channel = WebChatChannel(engine=stack.engine, store=stack.store, max_upload_bytes=1024)
    app = FastAPI()
    install_input_refusals(app)
    channel.attach(app)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    await client.get("/chat")  # the session cookie
    return client, channel


async def test_webchat_answers_nan_with_422_that_does_not_echo_the_input(stack: Stack) -> None:
    client, _ = await _webchat(stack)
    try:
        nan = await client.post(
            "/chat/api/send", content=b'{"client_id": "abcdefgh1", "text": NaN}', headers=HEADERS
        )
        assert nan.status_code == 422
        huge = "x" * 200_000
        big = await client.post("/chat/api/send", json={"client_id": "abcdefgh2", "text": huge})
        assert big.status_code == 422
        assert len(big.content) < 2_000
        deep = await client.post("/chat/api/send", content=b"[" * 100_000, headers=HEADERS)
        assert 400 <= deep.status_code < 500
        ok = await client.post("/chat/api/send", json={"client_id": "abcdefgh3", "text": "菜单"})
        assert ok.status_code == 200
        assert ok.json()["accepted"] is True
    finally:
        await client.aclose()
