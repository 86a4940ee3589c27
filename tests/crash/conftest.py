"""The Telegram side of the crash tests: a fake Bot API on 127.0.0.1 that can leave a
``sendMessage`` unanswered, and ``sealbot serve`` subprocesses wired to it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bot.channels.telegram.fake_server import FakeTelegram, _error, create_app
from tests.fixtures.served import ServedProcess, free_port, serve_in_thread

TG_TOKEN = "4242:crash-token"
TG_SECRET = "crash-webhook-secret"
HOOK = "/telegram/crash-hook"
USER = 7


@dataclass
class HoldingTelegram(FakeTelegram):
    """The fake Bot API, able to leave the next ``sendMessage`` unanswered."""

    hold_next_send: bool = False
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def _api_sendMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if self.hold_next_send:
            self.hold_next_send = False
            self.held.set()
            # Not answered while the caller lives: the test kills it, then lets go.
            await asyncio.to_thread(self.release.wait, 60)
            return _error(502, "Bad Gateway")
        return await super()._api_sendMessage(params, files)


@pytest.fixture
def telegram() -> Iterator[tuple[HoldingTelegram, str]]:
    fake = HoldingTelegram(TG_TOKEN)
    with serve_in_thread(create_app(fake), free_port(), ready_path=None, lifespan="off") as base:
        try:
            yield fake, base
        finally:
            fake.release.set()  # a request still held (a failed test) ends before the server stops


def telegram_service(tmp_path: Path, base: str, **env: str) -> ServedProcess:
    """``sealbot serve`` with Telegram switched on against the fake at ``base``."""
    return ServedProcess(
        tmp_path,
        TELEGRAM_ENABLED="true",
        TELEGRAM_TOKEN=TG_TOKEN,
        TELEGRAM_API_BASE_URL=f"{base}/bot",
        TELEGRAM_FILE_BASE_URL=f"{base}/file/bot",
        TELEGRAM_WEBHOOK_SECRET=TG_SECRET,
        TELEGRAM_WEBHOOK_PATH=HOOK.rsplit("/", 1)[1],
        TELEGRAM_PUBLIC_URL="https://bot.example.com",
        TELEGRAM_PER_CHAT_INTERVAL="0",
        **env,
    )


@pytest.fixture
def served(tmp_path: Path, telegram: tuple[HoldingTelegram, str]) -> Iterator[ServedProcess]:
    service = telegram_service(tmp_path, telegram[1])
    service.start()
    yield service
    service.stop()


def post_update(served: ServedProcess, update: dict[str, Any]) -> None:
    answer = httpx.post(
        served.base + HOOK, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}, timeout=30
    )
    assert answer.status_code == 200, answer.text


def answered_texts(fake: FakeTelegram) -> list[str]:
    return [str(c.params["text"]) for c in fake.calls_of("sendMessage") if c.result is not None]


def received_texts(fake: FakeTelegram) -> list[str]:
    return [str(c.params["text"]) for c in fake.calls_of("sendMessage")]


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(what)
        time.sleep(0.05)


def outbox_rows(tmp_path: Path) -> list[tuple[str, str]]:
    """(status, text) of every stored reply, read from the service's own database file."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/bot.db")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, payload FROM outbox ORDER BY id")).all()
    finally:
        engine.dispose()
    return [(str(status), str(payload)) for status, payload in rows]


def stored_texts(rows: list[tuple[str, str]]) -> list[str]:
    return [str(json.loads(payload)["reply"]["text"]) for _, payload in rows]
