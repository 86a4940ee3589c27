"""Every HTTP request gets an id that its log lines carry and its answer names.

``X-Request-ID`` from the proxy is kept when it looks like an id (so one id follows a request
through nginx and the worker), else a new one is made; the answer carries it back. Plain ASGI,
so streamed answers (the support inbox's event stream) keep streaming.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability.logs import bound, new_request_id

HEADER = b"x-request-id"
_ACCEPTED = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER, b"")
        request_id = given.decode() if _ACCEPTED.fullmatch(given) else new_request_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER, request_id.encode())]
            await send(message)

        with bound(request=request_id):
            await self.app(scope, receive, send_with_id)
