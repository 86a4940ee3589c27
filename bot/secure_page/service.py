"""The rules of the password page, shared by the HTTP page and the terminal chat.

``open`` checks a link (signature, expiry, still the conversation's current link, not claimed
by another browser) and gives what the form needs; ``submit`` takes the password, calls the
platform and reports to the conversation, which continues by itself. A refused link never
changes anything but telling the chat, which then offers a new link.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.engine.messages import ConversationKey, ExternalEvent
from bot.engine.runtime import Engine
from bot.redaction import remember_password
from bot.secure_page.limits import SlidingWindow
from bot.secure_page.links import LinkRefused, PageLink, PageLinks
from handlers import password_page as chat
from handlers.platform_errors import explain_in
from platform_client.client import PlatformClient
from platform_client.errors import Conflict, PlatformClientError

CODE_ERRORS = {
    "sms_code_wrong",
    "sms_code_expired",
    "sms_code_exhausted",
    "sms_code_not_found",
    "sms_code_missing",
}
SETS_PASSWORD = {"register", "reset"}


@dataclass(frozen=True)
class PageView:
    """What the page shows: ``form`` (with ``error`` after a failed try), ``done`` or
    ``refused`` (``reason``). ``locale`` is the conversation's language."""

    status: str
    purpose: str = ""
    locale: str = "zh-CN"
    error: str | None = None
    reason: str | None = None
    csrf: str = ""
    phone_masked: str = ""
    conversation: ConversationKey | None = None  # whose chat a ``done`` page logged in


@dataclass(frozen=True)
class _Conversation:
    link: PageLink
    answers: dict[str, Any]
    locale: str


def browser_digest(browser: str) -> str:
    return hashlib.sha256(b"sealbot-page-browser\x00" + browser.encode()).hexdigest()


class PasswordPages:
    def __init__(
        self,
        *,
        engine: Engine,
        platform: PlatformClient,
        links: PageLinks,
        per_link: int = 10,
        per_client: int = 30,
    ) -> None:
        self.engine = engine
        self.platform = platform
        self.links = links
        self._per_link = SlidingWindow(per_link, timedelta(minutes=10))
        self._per_client = SlidingWindow(per_client, timedelta(minutes=1))

    # ---- reading a link ---------------------------------------------------------------------------

    def csrf_for(self, nonce: str, browser: str) -> str:
        return self.links.mac("csrf", nonce, browser)

    async def open(self, token: str, browser: str) -> PageView:
        """The form for a valid link, or why it is refused (the chat is told too)."""
        found = await self._conversation(token, browser)
        if isinstance(found, PageView):
            return found
        return self._form(found, browser)

    async def _conversation(self, token: str, browser: str) -> _Conversation | PageView:
        now = self.engine.clock.now()
        try:
            link = self.links.read(token, now)
        except LinkRefused as exc:
            if exc.reason == "expired":
                await self._tell_chat_refused(token, "expired")
            return PageView("refused", reason=exc.reason)
        snapshot = await self.engine.store.load(link.key, None)
        if snapshot.state is None:
            return PageView("refused", reason="invalid")
        state = self.engine.codec.load(snapshot.state)
        locale = state.locale or "zh-CN"
        run = state.run
        if (
            run is None
            or run.answers.get(chat.NONCE) != link.nonce
            or run.answers.get(chat.PURPOSE) != link.purpose
        ):
            return PageView("refused", reason="used", locale=locale)
        claim = run.answers.get(chat.CLAIM)
        if claim is not None and not hmac.compare_digest(str(claim), browser_digest(browser)):
            await self._deliver(link, chat.REFUSED, {"reason": "other_browser"}, suffix="other_browser")
            return PageView("refused", reason="other_browser", locale=locale)
        return _Conversation(link, dict(run.answers), locale)

    def _form(self, conv: _Conversation, browser: str, error: str | None = None) -> PageView:
        phone = str(conv.answers.get("phone") or "")
        return PageView(
            "form",
            purpose=conv.link.purpose,
            locale=conv.locale,
            error=error,
            csrf=self.csrf_for(conv.link.nonce, browser),
            phone_masked=phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "",
        )

    # ---- submitting ---------------------------------------------------------------------------------

    async def submit(
        self, token: str, browser: str, *, csrf: str, password: str, confirm: str | None, client: str
    ) -> PageView:
        now = self.engine.clock.now()
        if not self._per_client.allow(client, now) or not self._per_link.allow(token[:64], now):
            return PageView("refused", reason="rate_limited")
        found = await self._conversation(token, browser)
        if isinstance(found, PageView):
            return found
        conv = found
        if not hmac.compare_digest(csrf, self.csrf_for(conv.link.nonce, browser)):
            return self._form(conv, browser, self._t(conv, "secure_page.csrf_failed"))
        # The first browser that submits a genuine form owns the link from now on.
        if chat.CLAIM not in conv.answers and not await self._claim(conv.link, browser):
            return PageView("refused", reason="used", locale=conv.locale)
        if not password:
            return self._form(conv, browser, self._t(conv, "secure_page.password_empty"))
        if conv.link.purpose in SETS_PASSWORD and password != confirm:
            return self._form(conv, browser, self._t(conv, "secure_page.mismatch"))
        phone = str(conv.answers.get("phone") or "")
        code = str(conv.answers.get("code") or "")
        try:
            if conv.link.purpose == "register":
                session = (await self.platform.accounts.register(phone, code, password)).session
            elif conv.link.purpose == "reset":
                session = await self.platform.accounts.reset_password(phone, code, password)
            else:
                session = await self.platform.accounts.login_password(phone, password)
            account = await self.platform.accounts.me(session.token)
        except PlatformClientError as exc:
            return await self._refusal(conv, browser, exc)
        data = {
            "purpose": conv.link.purpose,
            "account_id": session.account_id,
            "token": session.token,
            "realname": account.realname_status == "verified",
        }
        await self._deliver(conv.link, chat.DONE, data, suffix="done")

        async def remember(ctx: Any) -> None:
            await remember_password(ctx.state.memory, password, now)

        await self.engine.push(conv.link.key, remember)
        return PageView("done", purpose=conv.link.purpose, locale=conv.locale, conversation=conv.link.key)

    async def _refusal(self, conv: _Conversation, browser: str, exc: PlatformClientError) -> PageView:
        if exc.code in CODE_ERRORS:
            # The code was typed in the chat: the chat asks for it again.
            await self._deliver(conv.link, chat.CODE_REJECTED, {"code": exc.code}, suffix="code")
            return PageView("refused", reason="code", locale=conv.locale)
        if isinstance(exc, Conflict) and exc.code == "phone_registered":
            await self._deliver(conv.link, chat.REGISTERED, {}, suffix="registered")
            return PageView("refused", reason="registered", locale=conv.locale)
        return self._form(conv, browser, self._explain(conv, exc))

    # ---- the conversation -----------------------------------------------------------------------

    async def _claim(self, link: PageLink, browser: str) -> bool:
        """The first browser that submits owns the link; False when the link moved on."""
        claimed = False

        async def claim(ctx: Any) -> None:
            nonlocal claimed
            run = ctx.state.run
            if run is not None and run.answers.get(chat.NONCE) == link.nonce:
                run.answers.setdefault(chat.CLAIM, browser_digest(browser))
                claimed = run.answers[chat.CLAIM] == browser_digest(browser)

        await self.engine.push(link.key, claim)
        return claimed

    async def _deliver(self, link: PageLink, kind: str, data: dict[str, Any], *, suffix: str) -> None:
        event = ExternalEvent(
            event_id=f"secure-page:{link.nonce}:{suffix}", type=kind, data={"nonce": link.nonce, **data}
        )
        await self.engine.deliver_event(link.key, event)

    async def _tell_chat_refused(self, token: str, reason: str) -> None:
        """An expired link: if the chat still waits on it, it offers a new one."""
        try:
            link = self.links.read(token, self.engine.clock.now(), check_expiry=False)
        except LinkRefused:
            return  # forged: nothing to tell anyone
        await self._deliver(link, chat.REFUSED, {"reason": reason}, suffix=reason)

    # ---- texts ---------------------------------------------------------------------------------

    def _t(self, conv: _Conversation, key: str, **params: Any) -> str:
        return self.engine.catalog.get(conv.locale, key, **params)

    def _explain(self, conv: _Conversation, exc: PlatformClientError) -> str:
        if exc.code.startswith("password_"):
            return self._t(conv, "secure_page.password_weak")
        if exc.code == "wrong_credentials" and "attempts_left" in (exc.details or {}):
            return self._t(conv, "secure_page.wrong_password", attempts_left=exc.details["attempts_left"])
        return explain_in(self.engine.catalog, conv.locale, exc)
