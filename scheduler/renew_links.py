"""Short-lived signed links that open the renewal of one seal (WeChat notices carry them).

``/r/renew/<token>``: the token names the seal and an expiry, signed with an HMAC of the
service's secret, so a link cannot be forged for another seal or used after it expires. A good
link opens the web chat with the start parameter ``renew-<seal id>``; a bad or old one shows a
short page saying how to renew from the chat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response


class RenewLinks:
    def __init__(self, secret: str, public_url: str, *, ttl: timedelta = timedelta(hours=72)) -> None:
        self._key = hashlib.sha256(b"sealbot.renew-link|" + secret.encode()).digest()
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def token(self, seal_id: str, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        payload = f"{seal_id}.{expires}"
        return f"{payload}.{self._sign(payload)}"

    def url(self, seal_id: str, now: datetime) -> str:
        return f"{self.public_url}/r/renew/{self.token(seal_id, now)}"

    def verify(self, token: str, now: datetime) -> str | None:
        """The seal id of a good, unexpired token; None otherwise."""
        seal_id, _, rest = token.partition(".")
        expires, _, signature = rest.partition(".")
        if not seal_id or not expires.isdigit() or not signature:
            return None
        if not hmac.compare_digest(self._sign(f"{seal_id}.{expires}"), signature):
            return None
        if datetime.fromtimestamp(int(expires), UTC) <= now:
            return None
        return seal_id


_EXPIRED_PAGE = (
    "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
    "<meta name=viewport content='width=device-width,initial-scale=1'><title>{title}</title></head>"
    "<body style='font-family:system-ui,sans-serif;margin:2rem'><h1>{title}</h1><p>{text}</p>"
    "<p><a href='/chat'>{link}</a></p></body></html>"
)


def renew_link_router(links: RenewLinks, now: Callable[[], datetime]) -> APIRouter:
    router = APIRouter()

    @router.get("/r/renew/{token}", include_in_schema=False)
    async def open_renewal(token: str) -> Response:
        seal_id = links.verify(token, now())
        if seal_id is None:
            page = _EXPIRED_PAGE.format(
                title=escape("链接已失效 / Link expired"),
                text=escape('请在聊天中发送「续期」办理。 Send "renew" in the chat to renew.'),
                link=escape("打开聊天 / Open the chat"),
            )
            return HTMLResponse(page, status_code=410)
        return RedirectResponse(f"/chat?start=renew-{seal_id}", status_code=303)

    return router
