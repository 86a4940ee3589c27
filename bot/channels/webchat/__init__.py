"""The web chat: a page at ``/chat`` and a small JSON API it polls.

A visitor is identified by a cookie the server issues and signs (see ``sessions``); the
conversation key is a hash of its chat id, so the cookie value itself is never stored. Messages carry a client-made id, which is the engine's
dedupe key: a retried POST has one effect. Replies reach the page by long polling the
conversation's delivered messages, so proactive pushes (payment, shipping) arrive the same way.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from bot.channels.base import ChannelLifecycle, SimpleHealth
from bot.channels.webchat.client_address import client_ip
from bot.channels.webchat.history import media_url, merged_history
from bot.channels.webchat.sessions import COOKIE, WebSession, WebSessions
from bot.channels.webchat.wakeups import WakeUps
from bot.engine.i18n import normalise_locale
from bot.engine.media import sniff
from bot.engine.messages import ConversationKey, FileRef, Inbound, OutboundMessage, opened
from bot.engine.runtime import Engine, PassiveWindow
from bot.engine.secrets_box import SecretBox
from bot.engine.store import ConversationStore
from bot.errors import MediaExpired, StorageError
from bot.settings import Network
from dbkit.bus import InProcessBus

CHANNEL = "web"
ACCOUNT = "main"
PAGE = Path(__file__).parent / "static" / "chat.html"
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
POLL_SECONDS = 25.0
OPERATOR_TTL = 300.0  # seconds the operator's name is kept before it is asked again
HISTORY_LIMIT = 1000  # bot messages a (re)load reads at once, with the user's own between them


log = logging.getLogger(__name__)


async def client_gone(request: Request) -> None:
    """Returns when the client has disconnected. A GET's body is empty, so after it the ASGI
    server's next message is the disconnect (uvicorn sends it as soon as the socket closes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _first_of(woken: asyncio.Event, gone: asyncio.Task[None], seconds: float) -> None:
    waking = asyncio.create_task(woken.wait())
    try:
        await asyncio.wait({waking, gone}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waking.cancel()


class OperatorName:
    """The operator's name for the page header (from the platform's operator identity), kept a
    few minutes: the page must open even when the platform is slow or down (then no name)."""

    def __init__(self, fetch: Callable[[], Awaitable[str]] | None) -> None:
        self._fetch = fetch
        self._value: str | None = None
        self._until = 0.0

    async def get(self) -> str | None:
        if self._fetch is None:
            return None
        now = time.monotonic()
        if now >= self._until:
            try:
                self._value = (await asyncio.wait_for(self._fetch(), 2.0)).strip() or None
            except Exception:  # any failure only costs the header its name
                log.warning("operator identity unavailable for the web chat header", exc_info=True)
            self._until = now + OPERATOR_TTL
        return self._value


class SendBody(BaseModel):
    client_id: str = Field(min_length=8, max_length=64)
    text: str | None = Field(default=None, max_length=4000)
    token: str | None = Field(default=None, max_length=128)
    lang: str | None = Field(default=None, max_length=20)


class WebChatSender:
    """Delivery to the web is making the message visible to the page's poll: wake the pollers
    of its conversation (the outbox then marks it sent, and tells other workers)."""

    channel = CHANNEL
    waits = False  # waking the pollers is at once: no task of its own (``ChannelSender``)

    def __init__(self, wakeups: WakeUps) -> None:
        self._wakeups = wakeups

    async def send(self, message: OutboundMessage) -> None:
        self._wakeups.wake_soon(message.key)


def message_json(message: OutboundMessage, box: SecretBox | None = None) -> dict[str, Any]:
    """``box`` opens the full text of a private reply (a summary to check); without it the
    masked copy is shown, as in a history read back after a reload."""
    reply = opened(message.reply, box)
    text = reply.text
    return {
        "id": message.outbox_id,
        "kind": reply.kind.value,
        "origin": message.origin.value,
        "text": text,
        "options": [{"token": o.token, "label": o.label} for o in reply.options],
        "url": reply.url,
        "file": {
            "url": media_url(reply.file),
            "name": reply.file.filename,
            "type": reply.file.content_type,
        }
        if reply.file
        else None,
    }


class WebChatChannel(ChannelLifecycle):
    """The web chat at ``/chat``: its pages and API (the router), and the sender that wakes
    long polls (through ``wakeups``, on every worker). Nothing outside to check."""

    passive_window: PassiveWindow | None = None  # answers arrive by polling, through the outbox

    def __init__(
        self,
        *,
        engine: Engine,
        store: ConversationStore,
        max_upload_bytes: int,
        sessions: WebSessions,
        trusted_proxies: Sequence[Network] = (),
        operator_name: Callable[[], Awaitable[str]] | None = None,
        wakeups: WakeUps | None = None,
    ) -> None:
        """``wakeups`` carries "a reply was delivered" between workers (its ``delivered`` is
        the outbox's ``after_sent`` callback); without one, polls wake in this process only."""
        self.trusted_proxies = tuple(trusted_proxies)
        self.operator = OperatorName(operator_name)
        self.engine = engine
        self.store = store
        self.sessions = sessions
        self.max_upload_bytes = max_upload_bytes
        self.wakeups = wakeups or WakeUps(InProcessBus(), channel=CHANNEL)
        self.sender = WebChatSender(self.wakeups)
        self.router = self._build_router()

    async def _start(self) -> None:
        await self.wakeups.start()

    async def _stop(self) -> None:
        await self.wakeups.stop()

    def attach(self, app: FastAPI) -> None:
        app.include_router(self.router)

    async def health(self) -> SimpleHealth:
        return SimpleHealth("web chat")

    async def _session(self, request: Request, response: Response) -> WebSession:
        session = await self.sessions.read(request.cookies.get(COOKIE))
        if session is None:  # missing, forged or stale (rotated at login/logout)
            raise HTTPException(status_code=401, detail="no chat session: open /chat first")
        self.sessions.set_cookie(response, session)
        return session

    async def _key(self, request: Request, response: Response) -> ConversationKey:
        return (await self._session(request, response)).key

    def _build_router(self) -> APIRouter:
        router = APIRouter(prefix="/chat", include_in_schema=False)

        @router.get("", response_class=HTMLResponse)
        async def page(request: Request) -> Response:
            operator = html.escape(await self.operator.get() or "", quote=True)
            page_html = PAGE.read_text(encoding="utf-8").replace(
                'data-operator=""', f'data-operator="{operator}"'
            )
            response = HTMLResponse(page_html)
            session = await self.sessions.read(request.cookies.get(COOKIE)) or self.sessions.new()
            self.sessions.set_cookie(response, session)
            return response

        @router.post("/api/send")
        async def send(body: SendBody, request: Request, response: Response) -> dict[str, Any]:
            session = await self._session(request, response)
            key = session.key
            if not CLIENT_ID.fullmatch(body.client_id):
                raise HTTPException(status_code=422, detail="bad client_id")
            message_id = f"w:{body.client_id}"
            hint = normalise_locale(body.lang) if body.lang else None
            address = client_ip(request, self.trusted_proxies)
            if body.token:
                inbound = Inbound.choice(key, message_id, body.token, language_hint=hint, client_ip=address)
            elif body.text is not None and body.text.strip():
                inbound = Inbound.text_message(
                    key, message_id, body.text, language_hint=hint, client_ip=address
                )
            else:
                raise HTTPException(status_code=422, detail="text or token required")
            replies = await self.engine.handle(inbound)
            self.sessions.set_cookie(response, await self.sessions.after_message(session, session.account_id))
            return {"accepted": True, "replies": [m.outbox_id for m in replies]}

        @router.post("/api/upload")
        async def upload(
            request: Request,
            client_id: Annotated[str, Form(min_length=8, max_length=64)],
            file: Annotated[UploadFile, File()],
            response: Response,
        ) -> Response:
            key = await self._key(request, response)
            if not CLIENT_ID.fullmatch(client_id):
                raise HTTPException(status_code=422, detail="bad client_id")
            data = await file.read(self.max_upload_bytes + 1)
            if len(data) > self.max_upload_bytes:
                limit = f"{self.max_upload_bytes / (1024 * 1024):g} MB"
                text = self.engine.catalog.get(
                    await self._locale(key), "engine.file_too_large", limit=limit, kinds="JPG/PNG/PDF"
                )
                return JSONResponse({"accepted": False, "error": text}, status_code=413)
            stored: FileRef = await self.engine.media.put(
                data, filename=file.filename or "upload", content_type=sniff(data)
            )
            await self.engine.handle(Inbound.upload(key, f"w:{client_id}", stored))
            accepted = JSONResponse({"accepted": True})
            accepted.headers.update({k: v for k, v in response.headers.items() if k == "set-cookie"})
            return accepted

        @router.get("/api/messages")
        async def messages(
            request: Request,
            response: Response,
            after: int = 0,
            wait: float = POLL_SECONDS,
            history: bool = False,
        ) -> dict[str, Any]:
            key = await self._key(request, response)
            if history:
                return {"messages": await self._history(key)}
            deadline = asyncio.get_running_loop().time() + max(0.0, min(wait, POLL_SECONDS))
            # A poll whose client went away (tab closed, proxy dropped it) ends at once: left
            # waiting out its 25 s it would hold up a server that is shutting down.
            gone = asyncio.create_task(client_gone(request))
            try:
                while True:
                    with self.wakeups.waiting(key) as woken:
                        found = await self.store.delivered(key, after, 200)
                        remaining = deadline - asyncio.get_running_loop().time()
                        if found or remaining <= 0 or gone.done():
                            # Live messages show the owner's answers in full; the history read
                            # back on (re)load keeps them masked (a shared office PC).
                            box = self.engine.box if after > 0 else None
                            return {"messages": [message_json(m, box) for m in found]}
                        # Woken by a delivery on any worker or by the client leaving; else
                        # re-read after the sweep interval.
                        await _first_of(woken, gone, min(remaining, self.wakeups.sweep_seconds))
            finally:
                gone.cancel()

        @router.get("/api/media/{media_id}")
        async def media(media_id: str, request: Request, response: Response, name: str = "file") -> Response:
            key = await self._key(request, response)
            if not await self._may_see(key, media_id):
                raise HTTPException(status_code=404, detail="not found")
            try:
                data = await self.engine.media.get(media_id)
            except MediaExpired:
                # a data export past its 24 h: gone for good, unlike a file briefly unreadable.
                # The browser opens this link itself, so the answer is a sentence, not JSON.
                text = self.engine.catalog.get(await self._locale(key), "channels.web_export_expired")
                return PlainTextResponse(text, status_code=410)
            except StorageError as exc:
                raise HTTPException(status_code=404, detail="not found") from exc
            kind = sniff(data)
            disposition = "inline" if kind.startswith("image/") else "attachment"
            safe = re.sub(r"[^\w.\-]", "_", name)[:80] or "file"
            return Response(
                data,
                media_type=kind,
                headers={
                    "Content-Disposition": f'{disposition}; filename="{safe}"',
                    "X-Content-Type-Options": "nosniff",
                },
            )

        return router

    async def _history(self, key: ConversationKey) -> list[dict[str, Any]]:
        """Everything shown so far, the user's own messages and uploads included, as stored:
        masked and redacted (the full values were for the moment of checking)."""
        found = await self.store.delivered(key, 0, HISTORY_LIMIT)
        entries = await self.store.inbound_log(key, HISTORY_LIMIT * 2)
        # Messages past the limit reach the page through its poll, which only carries the
        # bot's side: the user's later messages then wait for the next reload.
        return merged_history(found, entries, message_json, complete=len(found) < HISTORY_LIMIT)

    async def _locale(self, key: ConversationKey) -> str:
        """The language this chat speaks (chosen in the chat, else Chinese)."""
        row = await self.store.get(key)
        return (row.state.get("locale") if row else None) or "zh-CN"

    async def _may_see(self, key: ConversationKey, media_id: str) -> bool:
        """Only files sent to this conversation, or uploaded in it, are served to it."""
        for message in await self.store.delivered(key, 0, 10_000):
            if message.reply.file and message.reply.file.media_id == media_id:
                return True
        for entry in await self.store.inbound_log(key, 10_000):
            file = entry["body"].get("file")
            if file and file.get("media_id") == media_id:
                return True
        return False
