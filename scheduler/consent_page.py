"""The 订阅通知 consent page: where a WeChat user agrees to expiry reminders outside the chat.

WeChat only lets a subscription message (``message/subscribe/bizsend``) go to a user who
accepted its template, and a web page asks for that with the ``wx-open-subscribe`` open tag of
the JS-SDK. The chat offers a link to this page at natural moments (reminders turned on, an
order completed); the page configures the JS-SDK with a signature over the ``jsapi_ticket``,
shows the tag for the reminder templates, and posts what the user chose back here. Each
accepted template is recorded exactly as the ``subscribe_msg_popup_event`` callback records it
(``SubscriptionConsents.record``): one accept is one message.

The link is signed with the service's secret, names the WeChat conversation (so a result can
only be recorded for the user the chat gave the link to) and lasts ``CONSENT_TTL``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from bot.channels.wechat.errors import WeChatError
from bot.channels.wechat.token import EARLY
from bot.engine.i18n import Catalog
from bot.engine.messages import ConversationKey
from bot.engine.ports import Clock

CONSENT_PATH = "/r/consent"
RESULT_PATH = "/r/consent/result"
CONSENT_TTL = timedelta(minutes=30)
WECHAT = "wechat"
# The JS-SDK itself; WeChat serves it only from its own host.
JSSDK_URL = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js"
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://res.wx.qq.com https://res2.wx.qq.com; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'"
)
# What the open tag reports per template; "cancel" and "filter" mean nothing was decided.
DECISIONS = frozenset({"accept", "reject", "ban"})


class ConsentLinkRefused(Exception):
    """``reason``: invalid (forged, damaged, not for a WeChat chat) or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def jsapi_signature(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    """The JS-SDK ``wx.config`` signature: SHA-1 of the four fields in this order (WeChat's
    JS-SDK documentation, 附录1); ``url`` is the page's full address without the fragment."""
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url.split('#', 1)[0]}"
    return hashlib.sha1(plain.encode(), usedforsecurity=False).hexdigest()  # WeChat prescribes SHA-1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ConsentLink:
    key: ConversationKey
    locale: str
    expires: datetime


class ConsentLinks:
    """Signed, short-lived links bound to one WeChat conversation."""

    def __init__(self, secret: str, public_url: str, *, ttl: timedelta = CONSENT_TTL) -> None:
        self._key = hashlib.sha256(b"sealbot.reminder-consent\x00" + secret.encode()).digest()
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def token(self, key: ConversationKey, locale: str, now: datetime) -> str:
        body = {"k": str(key), "l": locale, "e": int((now + self.ttl).timestamp())}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def url(self, key: ConversationKey, locale: str, now: datetime) -> str:
        # The token is URL-safe base64 and a dot: it needs no quoting, so the address the
        # browser shows is exactly the one the signature is computed over.
        return f"{self.public_url}{CONSENT_PATH}?t={self.token(key, locale, now)}"

    def read(self, token: str, now: datetime) -> ConsentLink:
        payload, _, signature = token.partition(".")
        if not payload or not hmac.compare_digest(signature, self._mac(payload)):
            raise ConsentLinkRefused("invalid")
        try:
            data = json.loads(_unb64(payload))
            link = ConsentLink(
                ConversationKey.parse(str(data["k"])),
                str(data["l"]),
                datetime.fromtimestamp(int(data["e"]), UTC),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConsentLinkRefused("invalid") from exc
        if link.key.channel != WECHAT:
            raise ConsentLinkRefused("invalid")
        if link.expires <= now:
            raise ConsentLinkRefused("expired")
        return link


class TicketApi(Protocol):
    async def jsapi_ticket(self) -> tuple[str, int]: ...


class ConsentStore(Protocol):
    async def record(self, openid: str, template_id: str, status: str, now: datetime) -> None: ...


class JsapiTickets:
    """The JS-SDK ticket, kept until ``EARLY`` before it expires, as the access token is
    (WeChat limits how often it may be fetched); concurrent page loads of one worker share one
    fetch."""

    def __init__(self, api: TicketApi, clock: Clock) -> None:
        self.api = api
        self.clock = clock
        self._ticket: tuple[str, datetime] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            now = self.clock.now()
            if self._ticket is None or self._ticket[1] - EARLY <= now:
                ticket, lifetime = await self.api.jsapi_ticket()
                self._ticket = (ticket, now + timedelta(seconds=lifetime))
            return self._ticket[0]


class ConsentPage:
    """Offers the link (for the chat), serves the page and records the results."""

    def __init__(
        self,
        *,
        appid: str,
        links: ConsentLinks,
        tickets: JsapiTickets,
        consents: ConsentStore,
        template_ids: Sequence[str],
        catalog: Catalog,
        clock: Clock,
    ) -> None:
        self.appid = appid
        self.links = links
        self.tickets = tickets
        self.consents = consents
        self.template_ids = tuple(t for t in template_ids if t)
        self.catalog = catalog
        self.clock = clock

    def url(self, key: ConversationKey, locale: str) -> str | None:
        """The page's link for this chat; None where it cannot help (not WeChat, no template)."""
        if key.channel != WECHAT or not self.template_ids:
            return None
        return self.links.url(key, locale, self.clock.now())

    def _t(self, locale: str, name: str) -> str:
        return escape(self.catalog.get(locale, f"reminders.consent_page.{name}"))

    def _notice(self, text: str, locale: str, status: int) -> HTMLResponse:
        page = _PAGE.format(
            lang=escape(locale), title=self._t(locale, "title"), body=f"<p>{text}</p>", head=""
        )
        return HTMLResponse(page, status_code=status, headers={"Content-Security-Policy": PAGE_CSP})

    def _refused(self, reason: str, locale: str = "zh-CN") -> HTMLResponse:
        return self._notice(self._t(locale, "refused_" + reason), locale, 410)

    async def render(self, token: str, query: str) -> HTMLResponse:
        try:
            link = self.links.read(token, self.clock.now())
        except ConsentLinkRefused as exc:
            return self._refused(exc.reason)
        try:
            ticket = await self.tickets.get()
        except WeChatError:
            # No ticket, no JS-SDK: say so instead of a page whose button cannot work.
            return self._notice(self._t(link.locale, "failed"), link.locale, 503)
        page_url = f"{self.links.public_url}{CONSENT_PATH}?{query}"
        timestamp = int(self.clock.now().timestamp())
        nonce = secrets.token_urlsafe(12)
        config = {
            "debug": False,
            "appId": self.appid,
            "timestamp": timestamp,
            "nonceStr": nonce,
            "signature": jsapi_signature(ticket, nonce, timestamp, page_url),
            "jsApiList": ["checkJsApi"],
            "openTagList": ["wx-open-subscribe"],
        }
        locale = link.locale
        data = {
            "config": config,
            "token": token,
            "result_url": RESULT_PATH,
            "texts": {
                name: self.catalog.get(locale, f"reminders.consent_page.{name}")
                for name in ("done_accept", "done_reject", "failed", "not_wechat")
            },
        }
        body = (
            f"<p>{self._t(locale, 'intro')}</p>"
            f'<wx-open-subscribe template="{escape(",".join(self.template_ids))}" id="subscribe">'
            '<script type="text/wxtag-template"><style>.b{display:block;width:100%;padding:14px;'
            "font-size:17px;border:0;border-radius:8px;background:#07c160;color:#fff}</style>"
            f'<button class="b">{self._t(locale, "button")}</button></script></wx-open-subscribe>'
            f'<p id="status" role="status">{self._t(locale, "hint")}</p>'
            '<script type="application/json" id="consent-data">'
            f"{_script_json(data)}</script>"
            f"<script>{_SCRIPT}</script>"
        )
        page = _PAGE.format(
            lang=escape(locale),
            title=self._t(locale, "title"),
            body=body,
            head=f'<script src="{JSSDK_URL}"></script>',
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})

    async def record(self, token: str, results: dict[str, Any]) -> dict[str, str]:
        """Record the user's decision for each reminder template; refused links raise."""
        now = self.clock.now()
        link = self.links.read(token, now)
        recorded: dict[str, str] = {}
        for template_id in self.template_ids:
            decision = str(results.get(template_id, "")).lower()
            if decision in DECISIONS:
                await self.consents.record(link.key.user_id, template_id, decision, now)
                recorded[template_id] = decision
        return recorded

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get(CONSENT_PATH, include_in_schema=False)
        async def consent_page(request: Request, t: str = "") -> Response:
            return await self.render(t, request.url.query)

        @router.post(RESULT_PATH, include_in_schema=False)
        async def consent_result(request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse({"error": "invalid"}, status_code=400)
            if not isinstance(body, dict) or not isinstance(body.get("results"), dict):
                return JSONResponse({"error": "invalid"}, status_code=400)
            try:
                recorded = await self.record(str(body.get("t", "")), body["results"])
            except ConsentLinkRefused as exc:
                return JSONResponse({"error": exc.reason}, status_code=410)
            return JSONResponse({"recorded": recorded})

        return router


def _script_json(data: dict[str, Any]) -> str:
    # Inside <script>: no "</script>" or "<!--" can be formed from the data.
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


_PAGE = (
    "<!doctype html><html lang={lang}><head><meta charset=utf-8>"
    "<meta name=viewport content='width=device-width,initial-scale=1'><title>{title}</title>{head}</head>"
    "<body style='font-family:system-ui,sans-serif;margin:2rem;max-width:32rem'><h1>{title}</h1>"
    "{body}</body></html>"
)

# The open tag reports ``subscribeDetails`` as a JSON string whose values are JSON strings
# with a ``status``; the page sends back only template id -> status.
_SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById('consent-data').textContent);
  var status = document.getElementById('status');
  function show(name) { status.textContent = data.texts[name]; }
  if (typeof wx === 'undefined') { show('not_wechat'); return; }
  wx.config(data.config);
  wx.error(function () { show('failed'); });
  var tag = document.getElementById('subscribe');
  tag.addEventListener('success', function (e) {
    var details = {}, results = {}, accepted = false;
    try { details = JSON.parse(e.detail.subscribeDetails); } catch (x) { details = {}; }
    Object.keys(details).forEach(function (id) {
      var value = details[id];
      try { value = typeof value === 'string' ? JSON.parse(value) : value; } catch (x) {}
      results[id] = value && value.status ? value.status : String(value);
      if (results[id] === 'accept') { accepted = true; }
    });
    fetch(data.result_url, {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({t: data.token, results: results})
    }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      show(accepted ? 'done_accept' : 'done_reject');
    }).catch(function () { show('failed'); });
  });
  tag.addEventListener('error', function () { show('failed'); });
})();
"""
