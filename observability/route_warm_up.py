"""Routes made ready before the first request, not by it.

FastAPI prepares a route (its body field, dependencies, the effective settings of the routers
it was included through) the first time a request is matched against it, and a request is
matched against every route before it; the app's first request therefore prepares all of them
on the event loop: 0.25-0.5 s for the bot with the platform mounted on a quiet machine, several
seconds on a loaded one, while no other request (a WeChat callback with its 5 s deadline, a
health check) is answered. ``warm_routes`` pays that at start-up instead: it routes one request
that no route matches through the app, and through every app mounted in it, before the service
says it is started.
"""

from __future__ import annotations

from starlette.routing import Mount
from starlette.types import ASGIApp, Message

# A path no route serves; the request never reaches a handler and its 404 goes nowhere.
WARM_UP_PATH = "/.well-known/sealbot-route-warm-up"


async def warm_routes(app: ASGIApp) -> None:
    """Prepare every route of ``app`` and of the apps mounted in it (recursively)."""
    await _unmatched_request(app)
    for route in getattr(app, "routes", ()):
        if isinstance(route, Mount):
            await warm_routes(route.app)


async def _unmatched_request(app: ASGIApp) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": WARM_UP_PATH,
        "raw_path": WARM_UP_PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def discard(_message: Message) -> None:
        return None

    router = getattr(app, "router", app)  # a FastAPI app's routes, without its middleware
    await router(scope, receive, discard)
