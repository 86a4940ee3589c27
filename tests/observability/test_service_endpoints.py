"""What the running service shows operators: Prometheus metrics counted where things happen,
readiness that names the dependency that is down, and request ids on answers and log lines."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.app import create_app
from bot.health import Readiness, database_check
from bot.settings import Settings
from dbkit.engine import make_engine
from observability.logs import JsonFormatter
from tests.fixtures.metrics import read_samples


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        "data_dir": tmp_path / "var",
        "public_base_url": "http://127.0.0.1:8000",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_metrics_count_a_web_chat_message_in_and_its_replies_out(tmp_path: Path) -> None:
    async with running(create_app(_settings(tmp_path))) as client:
        await client.get("/chat")
        sent = await client.post("/chat/api/send", json={"client_id": "metrics-1", "text": "菜单"})
        assert sent.status_code == 200
        replies = await client.get("/chat/api/messages", params={"after": 0, "wait": 5})
        assert replies.json()["messages"]
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = read_samples(response.text)
    assert samples[("sealbot_messages_in_total", (("channel", "web"),))] == 1
    delivered = samples[("sealbot_messages_out_total", (("channel", "web"),))]
    assert delivered >= 1
    assert samples[("sealbot_outbox_sent_total", ())] == delivered
    assert samples[("sealbot_outbox_lag_seconds_count", (("channel", "web"),))] == delivered
    assert samples[("sealbot_lock_wait_seconds_count", ())] >= 1
    assert samples[("sealbot_store_write_transactions_total", ())] >= 1
    # the embedded default's store ran its batches on the event loop; its writer thread, for
    # what must not run there, is reported beside it
    assert samples[("sealbot_store_loop_seconds_total", ())] > 0
    assert samples[("sealbot_store_writer_busy_seconds_total", ())] >= 0  # reported, idle or not
    assert samples[("sealbot_store_writer_cpu_seconds_total", ())] > 0  # it opened its connection
    assert samples[("sealbot_event_bus_connected", ())] == 1
    # the platform calls made for the menu are timed by route, ids folded into "{id}"
    calls = [key for key in samples if key[0] == "sealbot_platform_call_seconds_count"]
    assert calls
    assert all(
        not any(ch.isdigit() for ch in dict(labels)["route"].replace("/v1", "")) for _, labels in calls
    )


async def test_readyz_is_ready_when_the_database_the_platform_and_the_bus_answer(tmp_path: Path) -> None:
    async with running(create_app(_settings(tmp_path))) as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "platform": "ok", "bus": "ok"},
    }
    assert alive.json() == {"status": "ok"}


async def test_readyz_names_the_platform_and_redis_when_they_are_down(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        platform_mode="remote",
        platform_url=f"http://127.0.0.1:{_closed_port()}",
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
        bus_backend="redis",
    )
    async with running(create_app(settings)) as client:
        answer = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["platform"].startswith("PlatformUnavailable")
    assert body["checks"]["bus"].startswith("NotReady")
    assert body["checks"]["redis"] != "ok"
    assert alive.status_code == 200  # liveness does not depend on them


async def test_a_database_that_does_not_answer_is_reported_with_its_reason() -> None:
    db = make_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{_closed_port()}/none")
    try:
        [result] = await Readiness({"database": database_check(db)}, timeout=5).run()
    finally:
        await db.dispose()
    assert not result.ok
    assert result.detail != "ok"
    assert "nobody" not in result.detail  # no connection URL in the reason


async def test_without_reasons_a_failed_check_says_down_and_the_reason_goes_to_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def refused() -> None:
        raise ConnectionRefusedError("Connect call failed ('10.0.0.7', 5432)")

    async def fine() -> None:
        return None

    readiness = Readiness({"database": refused, "bus": fine})
    with caplog.at_level(logging.INFO, logger="sealbot.health"):
        ready, public = await readiness.report(reasons=False)
        _, operator = await readiness.report()
    assert not ready
    assert public == {"status": "unready", "checks": {"database": "down", "bus": "ok"}}
    assert "10.0.0.7" in operator["checks"]["database"]
    # said once when it turned bad, not on every probe
    assert [r.getMessage() for r in caplog.records].count(
        "not ready: database: ConnectionRefusedError: Connect call failed ('10.0.0.7', 5432)"
    ) == 1


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        # formatted at once: the ids are read from the context of the code that logged
        self.lines.append(json.loads(self.format(record)))


async def test_log_lines_of_a_request_carry_its_request_id_and_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _Lines()
    logger = logging.getLogger("sealbot")
    logger.addHandler(lines)
    monkeypatch.setattr(logger, "level", logging.DEBUG)
    try:
        async with running(create_app(_settings(tmp_path))) as client:
            await client.get("/chat")
            body = {"client_id": "logs-0001", "text": "菜单"}
            await client.post("/chat/api/send", json=body)
            # the same message again (a retried POST): the engine logs the duplicate
            answer = await client.post(
                "/chat/api/send", json=body, headers={"X-Request-ID": "req-from-nginx-1"}
            )
            other = await client.get("/healthz")
    finally:
        logger.removeHandler(lines)
    assert answer.headers["x-request-id"] == "req-from-nginx-1"
    assert len(other.headers["x-request-id"]) == 16  # made here when the proxy sent none
    [duplicate] = [line for line in lines.lines if str(line["msg"]).startswith("duplicate delivery")]
    assert duplicate["request_id"] == "req-from-nginx-1"
    assert str(duplicate["conversation_id"]).startswith("web:")


def test_the_command_line_logs_json_lines_when_asked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOT_", "PLATFORM_"))}
    env.update(
        SEALBOT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        SEALBOT_DATA_DIR=str(tmp_path / "var"),
        SEALBOT_LOG_JSON="true",
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines, "migrate logged nothing"
    assert {line["logger"] for line in lines} >= {"alembic.runtime.migration"}
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
