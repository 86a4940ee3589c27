"""A web chat long poll ends when its client goes away, instead of waiting out its 25 s: a poll
left behind by a closed tab or a dropped proxy connection kept a stopping server waiting for it.
The server is the one ``sealbot serve`` runs (uvicorn with the public port's config)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bot.app import create_app
from bot.channels.webchat import POLL_SECONDS
from bot.channels.webchat.sessions import COOKIE
from bot.channels.webchat.wakeups import WakeUps
from bot.cli import public_server_config
from bot.settings import Settings
from tests.fixtures.served import free_port

# A poll ends within this of its client leaving (the server notices a closed socket at once).
ENDED_WITHIN_S = 1.0
# A server with no live request stops within this (far below the poll's 25 s).
STOPPED_WITHIN_S = 3.0


class Served:
    def __init__(self, port: int, app: Any, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.server = server
        self.task = task
        self.wakeups: WakeUps = app.state.container.webchat.wakeups


@contextlib.asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        data_dir=tmp_path / "var",
        host="127.0.0.1",
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    app = create_app(settings)
    config = public_server_config(app, settings)
    config.log_level = "warning"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield Served(port, app, server, task)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, POLL_SECONDS + 10)


async def until(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``condition`` holds; fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds}s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def open_poll(served: Served) -> asyncio.StreamWriter:
    """A chat session's long poll on a raw connection, so the test decides when it closes."""
    async with httpx.AsyncClient(base_url=served.base) as web:
        cookie = (await web.get("/chat")).cookies[COOKIE]
    _reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        (
            f"GET /chat/api/messages?after=1000000000&wait={POLL_SECONDS} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{served.port}\r\nCookie: {COOKIE}={cookie}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    await until(lambda: served.wakeups.polls_waiting() == 1, 5.0)
    return writer


async def test_a_poll_whose_client_went_away_ends_within_a_second(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        client = await open_poll(server)
        client.close()
        await client.wait_closed()
        await until(lambda: server.wakeups.polls_waiting() == 0, ENDED_WITHIN_S)


async def test_the_server_stops_at_once_after_a_polling_client_went_away(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        client = await open_poll(server)
        client.close()
        await client.wait_closed()
        server.server.should_exit = True
        started = time.monotonic()
        done, _ = await asyncio.wait({server.task}, timeout=STOPPED_WITHIN_S)
        assert done, f"the server was still stopping after {STOPPED_WITHIN_S}s (waiting on the poll)"
        assert time.monotonic() - started < STOPPED_WITHIN_S


async def test_a_poll_of_a_client_still_there_waits_and_is_woken_by_a_delivery(tmp_path: Path) -> None:
    """Listening for the disconnect must not end a live poll nor keep it from its wake-up."""
    async with served(tmp_path) as server, httpx.AsyncClient(base_url=server.base, timeout=30) as web:
        await web.get("/chat")
        shown = (await web.get("/chat/api/messages", params={"history": True})).json()["messages"]
        last = max((m["id"] for m in shown), default=0)
        poll = asyncio.create_task(
            web.get("/chat/api/messages", params={"after": last, "wait": POLL_SECONDS})
        )
        await until(lambda: server.wakeups.polls_waiting() == 1, 5.0)
        await asyncio.sleep(0.5)
        assert not poll.done(), "a poll of a connected client ended with nothing to show"
        sent = await web.post("/chat/api/send", json={"client_id": "disconnect-test-1", "text": "菜单"})
        assert sent.status_code == 200, sent.text
        woken_in = await until(poll.done, 5.0)
        answered = poll.result().json()["messages"]
        assert answered, "the woken poll brought nothing"
        assert woken_in < 5.0


async def test_the_server_stops_within_its_grace_while_a_connected_client_is_polling(tmp_path: Path) -> None:
    """A browser left open keeps a 25 s poll going; stopping the worker must not wait it out."""
    from bot.cli import SHUTDOWN_GRACE_SECONDS

    async with served(tmp_path) as server, httpx.AsyncClient(base_url=server.base, timeout=30) as web:
        await web.get("/chat")
        poll = asyncio.create_task(
            web.get("/chat/api/messages", params={"after": 10**9, "wait": POLL_SECONDS})
        )
        await until(lambda: server.wakeups.polls_waiting() == 1, 5.0)
        server.server.should_exit = True
        started = time.monotonic()
        done, _ = await asyncio.wait({server.task}, timeout=SHUTDOWN_GRACE_SECONDS + 3.0)
        assert done, "the server waited for the open poll"
        assert time.monotonic() - started < SHUTDOWN_GRACE_SECONDS + 3.0
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await poll
