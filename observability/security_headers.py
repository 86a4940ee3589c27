"""Security headers for the HTML pages of the bot and the platform (and the APIs behind them).

Pages that take a confirmation or a password must not be framed (clickjacking), sniffed into
another type, or leak their URL (the password page's link is a credential) to other sites.
``SecurityHeaders`` adds them to every response under the given path prefixes, unless a
route set its own stricter value.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Inline styles and scripts are what the single-file pages use; no other origin is trusted.
DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def security_headers(*, https: bool, csp: str = DEFAULT_CSP, referrer: str = "same-origin") -> dict[str, str]:
    headers = {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": referrer,
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class SecurityHeaders:
    """ASGI middleware: adds ``security_headers`` to responses whose path starts with one of
    ``prefixes`` (headers a route set itself are kept)."""

    def __init__(self, app: ASGIApp, *, prefixes: Iterable[str], https: bool) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.headers = [(k.lower().encode(), v.encode()) for k, v in security_headers(https=https).items()]
        self.basic = [(k, v) for k, v in self.headers if k in {b"x-content-type-options", b"referrer-policy"}]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                present = {name.lower() for name, _ in headers}
                kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                # Pages get the CSP and no framing; a scan or PDF served inline keeps what its
                # route chose (a page CSP would stop the browser's PDF viewer).
                wanted = self.headers if kind.startswith((b"text/html", b"application/json")) else self.basic
                extra = [(k, v) for k, v in wanted if k not in present]
                message = {**message, "headers": [*headers, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
