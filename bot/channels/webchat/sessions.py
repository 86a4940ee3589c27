"""Web-chat sessions: a cookie the server issues, signs, rotates and expires.

The cookie is ``<chat id>.<epoch>.<mac>``: the chat id names the conversation (only its hash
is the conversation key), the epoch counts rotations, and the MAC (keyed by the secret key)
proves the server made it. A value the client made up, or an earlier epoch (a cookie copied
before a login or logout), is refused and a new, empty chat is started instead. The current
epoch lives in the conversation's state, so every worker agrees on it.

The epoch moves on at login and at logout (the cookie a shared PC kept before the login does
not reach the account's chat; the one kept after logout no longer opens it), and when a logged-in
chat was idle longer than ``idle`` or logged in longer than ``absolute``: then the chat is also
logged out, with a notice.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response

from bot.engine.context import Ctx
from bot.engine.i18n import Translator
from bot.engine.messages import ConversationKey, Origin
from bot.engine.runtime import Engine
from bot.engine.store import ConversationStore

COOKIE = "sealbot_chat"
CHANNEL = "web"
ACCOUNT = "main"
EPOCH = "_web_epoch"  # state.memory: the cookie epoch that is valid now
LOGGED_IN_AT = "_web_login_at"  # state.memory: when this chat was logged in (absolute timeout)
COOKIE_DAYS = 180
_VALUE = re.compile(r"^([A-Za-z0-9_-]{24})\.(\d{1,9})\.([A-Za-z0-9_-]{20,64})$")


@dataclass(frozen=True)
class WebSession:
    chat_id: str
    epoch: int
    key: ConversationKey
    cookie: str | None = None  # a new cookie value to set on the response
    # The platform account the chat was logged into when the cookie was read: what a message
    # is compared with afterwards to see whether it logged the chat in or out.
    account_id: str | None = None


def user_of(chat_id: str) -> str:
    return hashlib.sha256(chat_id.encode()).hexdigest()[:32]


class WebSessions:
    def __init__(
        self,
        *,
        secret: str,
        engine: Engine,
        store: ConversationStore,
        https: bool,
        idle: timedelta = timedelta(minutes=30),
        absolute: timedelta = timedelta(hours=12),
    ) -> None:
        self._key = hashlib.sha256(b"sealbot-webchat-cookie\x00" + secret.encode()).digest()
        self.engine = engine
        self.store = store
        self.https = https
        self.idle = idle
        self.absolute = absolute

    def _mac(self, chat_id: str, epoch: int) -> str:
        digest = hmac.new(self._key, f"{chat_id}.{epoch}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def value(self, chat_id: str, epoch: int) -> str:
        return f"{chat_id}.{epoch}.{self._mac(chat_id, epoch)}"

    def new(self) -> WebSession:
        chat_id = secrets.token_urlsafe(18)
        return WebSession(chat_id, 0, self._conversation(chat_id), self.value(chat_id, 0))

    def _conversation(self, chat_id: str) -> ConversationKey:
        return ConversationKey(CHANNEL, ACCOUNT, user_of(chat_id))

    async def read(self, cookie: str | None) -> WebSession | None:
        """The session of a genuine, current cookie; None for a missing, forged or stale one.
        An expired login is ended here (with a notice) and the cookie rotated."""
        match = _VALUE.fullmatch(cookie or "")
        if match is None:
            return None
        chat_id, epoch = match.group(1), int(match.group(2))
        if not hmac.compare_digest(match.group(3), self._mac(chat_id, epoch)):
            return None
        key = self._conversation(chat_id)
        row = await self.store.get(key)
        memory = (row.state.get("memory") or {}) if row is not None else {}
        if int(memory.get(EPOCH, 0)) != epoch:
            return None
        session = WebSession(chat_id, epoch, key, account_id=row.platform_account_id if row else None)
        if row is not None and row.platform_account_id is not None:
            now = self.engine.clock.now()
            last = row.last_inbound_at or row.updated_at
            started = memory.get(LOGGED_IN_AT)
            if now - last > self.idle:
                return await self._expire(session, "channels.web_idle_logout")
            if started and now - datetime.fromisoformat(started) > self.absolute:
                return await self._expire(session, "channels.web_absolute_logout")
        return session

    async def _expire(self, session: WebSession, notice: str) -> WebSession:
        async def log_out(ctx: Ctx) -> None:
            if ctx.state.session is not None:
                ctx.logout()
                ctx.say_text(ctx.t(notice), origin=Origin.SYSTEM)

        await self.engine.push(session.key, log_out)
        return await self.rotate(session)

    async def rotate(self, session: WebSession) -> WebSession:
        """A new epoch (the old cookie stops working) and the cookie that carries it."""
        epoch = session.epoch + 1
        account: str | None = None

        async def bump(ctx: Ctx) -> None:
            nonlocal account
            ctx.state.memory[EPOCH] = epoch
            account = ctx.state.session.account_id if ctx.state.session is not None else None
            if account is not None:
                ctx.state.memory.setdefault(LOGGED_IN_AT, ctx.now.isoformat())
            else:
                ctx.state.memory.pop(LOGGED_IN_AT, None)

        await self.engine.push(session.key, bump)
        return WebSession(
            session.chat_id, epoch, session.key, self.value(session.chat_id, epoch), account_id=account
        )

    async def after_message(self, session: WebSession, account_before: str | None) -> WebSession:
        """Rotate when the message logged the chat in or out (or into another account)."""
        row = await self.store.get(session.key)
        account_after = row.platform_account_id if row is not None else None
        if account_after == account_before:
            return session
        if account_after is None:
            # Logged out: this browser gets a new, empty chat; the old cookie stops working,
            # so what was shown and the media links of the logged-in chat are gone from here.
            # The logout's own answer went to the old chat, which this browser no longer
            # reads: the new one opens by saying it, in the language the user was using.
            await self.rotate(session)
            fresh = self.new()
            locale = row.state.get("locale") if row is not None else None
            await self.engine.push(fresh.key, functools.partial(_say_logged_out, locale=locale))
            return fresh
        await self._forget_login_time(session)
        return await self.rotate(session)

    async def _forget_login_time(self, session: WebSession) -> None:
        async def clear(ctx: Ctx) -> None:
            ctx.state.memory.pop(LOGGED_IN_AT, None)

        await self.engine.push(session.key, clear)

    async def account_of(self, session: WebSession) -> str | None:
        row = await self.store.get(session.key)
        return row.platform_account_id if row is not None else None

    async def logged_in_elsewhere(self, request: Request, response: Response, key: ConversationKey) -> None:
        """The password page (same browser) logged this chat in: rotate its cookie there."""
        session = await self.read(request.cookies.get(COOKIE))
        if session is not None and session.key == key:
            self.set_cookie(response, await self.after_message(session, None))

    def set_cookie(self, response: Response, session: WebSession) -> None:
        if session.cookie is None:
            return
        response.set_cookie(
            COOKIE,
            session.cookie,
            httponly=True,
            secure=self.https,
            samesite="lax",
            max_age=COOKIE_DAYS * 24 * 3600,
            path="/",
        )


async def _say_logged_out(ctx: Ctx, *, locale: str | None) -> None:
    if isinstance(locale, str) and locale:
        ctx.state.locale = locale
        ctx.t = Translator(ctx.t.catalog, locale)
    ctx.say_text(ctx.t("channels.web_logged_out"), origin=Origin.SYSTEM)
