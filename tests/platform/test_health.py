"""The platform's ``/healthz`` and ``/readyz``: ready while its database answers, else 503 with
which dependency is down (and no more: both are public)."""

from __future__ import annotations

import socket

import httpx
from fastapi import FastAPI

from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.clock import FrozenClock
from seal_platform.settings import PlatformSettings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_readyz_is_ready_while_the_database_answers(platform_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=platform_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://platform.test") as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_readyz_says_the_database_is_down_and_healthz_still_answers(
    platform_settings: PlatformSettings, clock: FrozenClock
) -> None:
    url = f"postgresql+asyncpg://nobody:secret@127.0.0.1:{_closed_port()}/none"
    services = build_platform_services(platform_settings.model_copy(update={"database_url": url}), clock)
    try:
        transport = httpx.ASGITransport(app=create_platform_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://platform.test") as http:
            unready = await http.get("/readyz")
            alive = await http.get("/healthz")
    finally:
        await services.db.dispose()
    assert unready.status_code == 503
    body = unready.json()
    assert body["status"] == "unready"
    assert body["reason"].startswith("database: ")
    assert "secret" not in unready.text
    assert "nobody" not in unready.text
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok"}
