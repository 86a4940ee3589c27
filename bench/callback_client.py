"""A minimal HTTP/1.1 client for the load generator: one keep-alive connection per simulated
caller, POST with a body, read a ``Content-Length`` answer.

httpx's connection pool costs the load generator several milliseconds of CPU per request at 100
concurrent callers (its pool scans every connection on each request): measured with py-spy, the
generator then sat at 100 % of a core while the service under test used 30 %, so the bench
measured its own client. This client does only what WeChat's callback server needs: a request
on a connection of its own, a timeout after which the connection is dropped (WeChat then retries
on a new one), and the status and body of the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit


class CallbackFailed(Exception):
    """No answer: the connection failed, closed early or timed out."""


@dataclass(frozen=True)
class CallbackAnswer:
    status: int
    text: str


class CallbackConnection:
    """One caller's connection to ``base`` (``http://host:port``), reopened after a failure."""

    def __init__(self, base: str, *, seconds: float) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"an http://host:port base is needed, not {base!r}")
        self.host, self.port = parts.hostname, parts.port
        self.seconds = seconds  # how long a caller waits for an answer
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, query: dict[str, str], body: bytes) -> CallbackAnswer:
        try:
            async with asyncio.timeout(self.seconds):
                return await self._exchange(path, query, body)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            # like WeChat after its 5 s: the connection is given up, a retry opens a new one
            await self.close()
            raise CallbackFailed(repr(exc)) from exc

    async def _exchange(self, path: str, query: dict[str, str], body: bytes) -> CallbackAnswer:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        head = (
            f"POST {path}?{urlencode(query)} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode("ascii") + body)
        status_line = await self._reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        keep_alive = True
        while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                raise ValueError("a chunked answer: the service sends Content-Length")
            elif name == "connection" and value.strip().lower() == "close":
                keep_alive = False
        payload = await self._reader.readexactly(length)
        if not keep_alive:
            await self.close()
        return CallbackAnswer(status, payload.decode("utf-8"))

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await writer.wait_closed()
