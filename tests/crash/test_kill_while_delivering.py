"""``kill -9`` of a real ``sealbot serve`` at a chosen point: while it is delivering a reply.

The service runs with Telegram switched on against a fake Bot API server on 127.0.0.1. The fake
is told to hold the next ``sendMessage``: it records the call, tells the test, and never
answers, so the service is stuck exactly between "sent the request" and "heard it was sent".
The test kills the service there, lets the fake answer again, and starts the service on the
same database.

What the product promises (docs/channels.md, "Delivery after a crash"): a reply committed
before a crash is delivered after the restart, at least once to the channel. The held request
may or may not have reached the user (Telegram cannot say), so the one duplicate allowed is
that unanswered first attempt; the user is told the reply once by an answered call, and the
stored outbox says it was sent once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from bot.channels.telegram.fake_server import FakeTelegram, _error, create_app
from tests.fixtures.served import ServedProcess, free_port

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
    port = free_port()
    # lifespan off: the fake has no startup; a short grace ends the held request on shutdown.
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(fake), host="127.0.0.1", port=port, log_level="warning", lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the fake Bot API stopped while starting"
        assert time.monotonic() < deadline, "the fake Bot API did not start"
        time.sleep(0.05)
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive(), "the fake Bot API did not shut down"


@pytest.fixture
def served(tmp_path: Path, telegram: tuple[HoldingTelegram, str]) -> Iterator[ServedProcess]:
    _, base = telegram
    service = ServedProcess(
        tmp_path,
        TELEGRAM_ENABLED="true",
        TELEGRAM_TOKEN=TG_TOKEN,
        TELEGRAM_API_BASE_URL=f"{base}/bot",
        TELEGRAM_FILE_BASE_URL=f"{base}/file/bot",
        TELEGRAM_WEBHOOK_SECRET=TG_SECRET,
        TELEGRAM_WEBHOOK_PATH=HOOK.rsplit("/", 1)[1],
        TELEGRAM_PUBLIC_URL="https://bot.example.com",
        TELEGRAM_PER_CHAT_INTERVAL="0",
    )
    service.start()
    yield service
    service.stop()


def _post_update(served: ServedProcess, update: dict[str, Any]) -> None:
    answer = httpx.post(
        served.base + HOOK, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}, timeout=30
    )
    assert answer.status_code == 200, answer.text


def _answered(fake: FakeTelegram) -> list[str]:
    return [str(c.params["text"]) for c in fake.calls_of("sendMessage") if c.result is not None]


def _received(fake: FakeTelegram) -> list[str]:
    return [str(c.params["text"]) for c in fake.calls_of("sendMessage")]


def _wait(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(what)
        time.sleep(0.05)


def _outbox_rows(tmp_path: Path) -> list[tuple[str, str]]:
    """(status, text) of every stored reply, read from the service's own database file."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/bot.db")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, payload FROM outbox ORDER BY id")).all()
    finally:
        engine.dispose()
    return [(str(status), str(payload)) for status, payload in rows]


def test_a_reply_whose_delivery_was_cut_by_a_kill_9_is_delivered_after_the_restart(
    tmp_path: Path, telegram: tuple[HoldingTelegram, str], served: ServedProcess
) -> None:
    fake, _ = telegram
    fake.hold_next_send = True
    _post_update(served, fake.text_update(USER, "/start"))
    assert fake.held.wait(30), "the service never tried to deliver the reply"
    [first_attempt] = _received(fake)
    assert _answered(fake) == []

    served.kill_9()  # while its sendMessage is on the wire, unanswered
    fake.release.set()
    served.start()
    _wait(lambda: bool(_answered(fake)), "the reply was not delivered after the restart")
    time.sleep(1.0)  # room for a wrong second delivery to show up

    # What the user was told: every stored reply, each by exactly one answered call; the only
    # other copy is the attempt the crash cut off (at-least-once to the channel, as documented).
    answered = _answered(fake)
    assert answered[0] == first_attempt
    assert len(set(answered)) == len(answered)
    assert sorted(_received(fake)) == sorted([first_attempt, *answered])
    # What is stored: the same replies, each sent.
    rows = _outbox_rows(tmp_path)
    assert [status for status, _ in rows] == ["sent"] * len(answered)
    stored = [json.loads(payload)["reply"]["text"] for _, payload in rows]
    assert all(text in said for text, said in zip(stored, answered, strict=True))
