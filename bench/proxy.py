"""A small round-robin reverse proxy (HTTP/1.1 and WebSocket) for the cluster test and bench.

It plays the part of ``deploy/nginx.conf`` where nginx is not installed: every request goes to
the next worker in turn (per request, not per connection, so a browser's keep-alive connection
does not pin it to one worker), ``/platform/...`` goes to the platform with the prefix removed,
and an ``Upgrade`` request (the UKey bridge's ``/bridge/ws``) is piped both ways for as long as
it lasts. Each request is answered on a connection that closes afterwards, which keeps the
proxy free of response framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from dataclasses import dataclass, field

_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class RoundRobinProxy:
    workers: list[Upstream]
    platform: Upstream | None = None
    host: str = "127.0.0.1"
    port: int = 0
    # Requests each upstream received (by its URL): the spread the tests check.
    served: Counter[str] = field(default_factory=Counter)
    # (path, upstream URL) of every request, in order.
    log: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(range(len(self.workers)))
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def set_workers(self, workers: list[Upstream]) -> None:
        self.workers[:] = workers
        self._turn = itertools.cycle(range(len(self.workers)))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Long polls and WebSockets still open are cut, as a proxy restart cuts them.
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _route(self, target: str) -> tuple[Upstream, str]:
        if self.platform is not None and (target == "/platform" or target.startswith("/platform/")):
            return self.platform, target.removeprefix("/platform") or "/"
        return self.workers[next(self._turn)], target

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > _MAX_HEAD:
            return
        request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = [tuple(line.split(":", 1)) for line in header_lines if ":" in line]
        names = {name.strip().lower(): value.strip() for name, value in headers}
        if "chunked" in names.get("transfer-encoding", "").lower():
            writer.write(b"HTTP/1.1 411 Length Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            return
        body = await reader.readexactly(int(names.get("content-length", "0")))
        upgrade = "upgrade" in names.get("connection", "").lower()
        upstream, path = self._route(target)
        self.served[upstream.url] += 1
        self.log.append((target, upstream.url))
        kept = [
            f"{name}:{value}"
            for name, value in headers
            if name.strip().lower() not in {"connection", "keep-alive", "proxy-connection"}
        ]
        peer = writer.get_extra_info("peername")
        kept.append(f"X-Forwarded-For: {peer[0] if peer else 'unknown'}")
        kept.append("Connection: Upgrade" if upgrade else "Connection: close")
        try:
            up_reader, up_writer = await asyncio.open_connection(upstream.host, upstream.port)
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            return
        up_writer.write(f"{method} {path} {version}\r\n".encode("latin-1"))
        up_writer.write(("\r\n".join(kept) + "\r\n\r\n").encode("latin-1") + body)
        await up_writer.drain()
        upward = asyncio.create_task(_pipe(reader, up_writer))
        downward = asyncio.create_task(_pipe(up_reader, writer))
        try:
            # The answer ends the exchange; a WebSocket ends when either side closes.
            await asyncio.wait(
                {downward, upward} if upgrade else {downward}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (upward, downward):
                task.cancel()
            await asyncio.gather(upward, downward, return_exceptions=True)
            up_writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # The upstream closed after its answer (Connection: close): so does the client's side.
        with contextlib.suppress(Exception):
            if sink.can_write_eof():
                sink.write_eof()
