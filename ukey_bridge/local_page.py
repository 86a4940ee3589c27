"""A PIN prompt in the browser: a page on 127.0.0.1 behind a one-time link.

Each question gets a fresh random token in its URL; the page answers only to that token, only
once, and only on the loopback interface, so another user or a web page cannot post a PIN.
"""

from __future__ import annotations

import asyncio
import html
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from ukey_bridge.errors import PinEntryCancelled
from ukey_bridge.i18n import CHINESE, Texts
from ukey_bridge.pin_prompt import JobExplanation, PinKind, PinRequest

MAX_BODY = 4096


@dataclass
class _Question:
    token: str
    page: str
    answer: asyncio.Future[dict[str, str]]


def _page(title: str, lines: list[str], fields: str, token: str) -> str:
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>UKey</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}"
        f"<form method='post' action='/{token}'>{fields}</form></body></html>"
    )


class LocalPagePinPrompt:
    def __init__(
        self, *, announce: Callable[[str], None], host: str = "127.0.0.1", texts: Texts = CHINESE
    ) -> None:
        self._t = texts
        self._announce = announce
        self._host = host
        self._server: asyncio.Server | None = None
        self._port = 0
        self._question: _Question | None = None
        self._lock = asyncio.Lock()
        self.notices: list[str] = []

    async def _ensure_server(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self._host, 0)
            self._port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _ask(self, title: str, lines: list[str], fields: str) -> dict[str, str]:
        async with self._lock:
            await self._ensure_server()
            token = secrets.token_urlsafe(24)
            future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
            self._question = _Question(token, _page(title, lines, fields, token), future)
            self._announce(f"http://{self._host}:{self._port}/{token}")
            try:
                return await future
            finally:
                self._question = None

    async def confirm(self, explanation: JobExplanation) -> bool:
        fields = (
            f"<button name='action' value='yes'>{self._t('page_run')}</button> "
            f"<button name='action' value='no'>{self._t('page_cancel')}</button>"
        )
        answer = await self._ask(explanation.title, list(explanation.details), fields)
        return answer.get("action") == "yes"

    async def ask_pin(self, request: PinRequest) -> str | None:
        lines = [f"UKey {request.key_label} ({request.key_serial})"]
        if request.warning:
            lines.append(request.warning)
        if request.kind is PinKind.USER:
            fields = (
                "<input type='password' name='pin' autofocus> "
                f"<button name='action' value='ok'>{self._t('page_ok')}</button>"
            )
        else:
            fields = (
                "<input type='password' name='pin' autofocus> <input type='password' name='pin2'> "
                f"<button name='action' value='ok'>{self._t('page_set_pin')}</button>"
            )
        fields += f" <button name='action' value='cancel'>{self._t('page_cancel')}</button>"
        answer = await self._ask(self._t("page_pin_title"), lines, fields)
        if answer.get("action") != "ok":
            raise PinEntryCancelled("PIN entry was cancelled")
        pin = answer.get("pin", "")
        if request.kind is PinKind.NEW_USER:
            if not pin and request.optional:
                return None
            if pin != answer.get("pin2", ""):
                raise PinEntryCancelled("the two new PINs were different")
        return pin

    async def notify(self, text: str) -> None:
        self.notices.append(text)
        self._announce(text)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, page = await self._respond(reader)
        except (ValueError, asyncio.IncompleteReadError, ConnectionError):
            status, page = "400 Bad Request", "bad request"
        data = page.encode("utf-8")
        headers = (
            f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(data)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        writer.write(headers.encode("ascii") + data)
        await writer.drain()
        writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[str, str]:
        request_line = (await reader.readline()).decode("ascii").split()
        headers: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(request_line) < 2:
            raise ValueError("no request line")
        method, path = request_line[0], request_line[1]
        question = self._question
        if question is None or not secrets.compare_digest(path.lstrip("/"), question.token):
            return "403 Forbidden", html.escape(self._t("page_invalid"))
        if method == "GET":
            return "200 OK", question.page
        if method != "POST":
            return "405 Method Not Allowed", "method not allowed"
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY:
            return "413 Payload Too Large", "too large"
        body = (await reader.readexactly(length)).decode("utf-8")
        fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        self._question = None  # one answer per link
        if not question.answer.done():
            question.answer.set_result(fields)
        return "200 OK", f"<p>{html.escape(self._t('page_thanks'))}</p>"
