"""``kill -9`` of a real ``sealbot serve`` at a chosen point: after it received a Telegram update
and before it committed anything for it.

The service runs with its conversation locks in Redis. The test takes the lock of the user's
conversation itself (the same ``SET NX`` key the service uses), so the service accepts the
webhook request and then waits for the lock, before it reads or writes the conversation. The
test kills it there, frees the lock and starts the service again, then does what Telegram does
when a webhook got no 200: delivers the same update (same ``update_id``) again, and once more
as a late duplicate. The user must get the answer once, and the store must hold one inbound
receipt and one set of replies.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from tests.crash.conftest import (
    HoldingTelegram,
    answered_texts,
    outbox_rows,
    post_update,
    stored_texts,
    telegram_service,
    wait_until,
)
from tests.fixtures.served import ServedProcess

REDIS_URL = os.environ.get("SEALBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LOCK_PREFIX = "sealbot:lock:"  # bot.engine.locks.RedisLock's default


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is needed at {REDIS_URL} (scripts/test starts it): {exc}")
    yield client
    client.close()


@pytest.fixture
def served(tmp_path: Path, telegram: tuple[HoldingTelegram, str]) -> Iterator[ServedProcess]:
    # The bus stays in process: pub/sub channels are shared by every database of a Redis server.
    service = telegram_service(
        tmp_path,
        telegram[1],
        SEALBOT_REDIS_URL=REDIS_URL,
        SEALBOT_LOCK_BACKEND="redis",
        SEALBOT_BUS_BACKEND="local",
    )
    service.start()
    yield service
    service.stop()


def _receipts(tmp_path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/bot.db")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM inbound_receipts")).scalar_one())
    finally:
        engine.dispose()


def test_an_update_killed_before_its_commit_is_answered_once_when_telegram_delivers_it_again(
    tmp_path: Path,
    telegram: tuple[HoldingTelegram, str],
    served: ServedProcess,
    redis_client: redis.Redis,
) -> None:
    fake, _ = telegram
    user = 700_000_000 + secrets.randbelow(99_999_999)  # a key no other test run holds
    lock = f"{LOCK_PREFIX}telegram:{fake.username}:{user}"
    assert redis_client.set(lock, "held-by-the-test", nx=True, px=120_000)
    update = fake.text_update(user, "/start")

    in_flight = ThreadPoolExecutor(1).submit(post_update, served, update)
    time.sleep(1.5)  # the service has the request and waits for the lock
    assert not in_flight.done(), "the service answered the webhook without its conversation lock"
    served.kill_9()
    assert in_flight.exception(timeout=30) is not None  # Telegram never got its 200
    assert answered_texts(fake) == []
    redis_client.delete(lock)

    served.start()
    post_update(served, update)  # Telegram's redelivery of the same update_id
    wait_until(lambda: bool(answered_texts(fake)), "the redelivered update was not answered")
    post_update(served, update)  # a late duplicate of it
    time.sleep(1.0)  # room for a wrong second answer to show up

    answered = answered_texts(fake)
    rows = outbox_rows(tmp_path)
    # What the user was told is what is stored, once.
    assert [status for status, _ in rows] == ["sent"] * len(answered)
    assert all(text in said for text, said in zip(stored_texts(rows), answered, strict=True))
    assert len(set(answered)) == len(answered)
    assert _receipts(tmp_path) == 1
