"""The service prepares its routes while it starts, so that its first request (a WeChat
callback with a 5 s deadline, a health check) does not wait for every route to be prepared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi import routing as fastapi_routing

from bot.app import create_app
from observability.route_warm_up import warm_routes
from tests.fixtures.served import free_port, serve_in_loop, service_settings


def _count_preparations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the routes FastAPI prepares from now on. FastAPI (0.16x) prepares a route the
    first time a request is matched against it, in ``_EffectiveRouteContext.from_api_route``;
    should a release drop that, this fails here rather than pass for nothing."""
    context = fastapi_routing._EffectiveRouteContext  # the laziness this module answers
    original: Callable[..., Any] = context.from_api_route.__func__  # type: ignore[attr-defined]
    prepared: list[str] = []

    def counting(cls: type, *args: Any, **kwargs: Any) -> Any:
        route = kwargs.get("original_route", args[0] if args else None)
        prepared.append(getattr(route, "path", "?"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(context, "from_api_route", classmethod(counting))
    return prepared


async def test_a_request_prepares_every_route_unless_they_were_warmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prepared = _count_preparations(monkeypatch)

    def app_with_routes() -> FastAPI:
        # Routes included from a router are the ones prepared lazily (an app's own are
        # prepared when added).
        app, mounted = FastAPI(), FastAPI()
        router, inner = APIRouter(prefix="/api"), APIRouter(prefix="/inner")
        for name in ("a", "b", "c"):
            router.add_api_route(f"/{name}", lambda: {"ok": True}, methods=["POST"])
            inner.add_api_route(f"/{name}", lambda: {"ok": True})
        app.include_router(router)
        mounted.include_router(inner)
        app.mount("/mounted", mounted)
        return app

    cold = app_with_routes()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cold), base_url="http://t") as client:
        assert (await client.post("/api/c")).status_code == 200
    assert "/api/a" in prepared  # the first request prepared the routes before its own

    warm = app_with_routes()
    await warm_routes(warm)
    assert {"/api/a", "/api/b", "/api/c", "/inner/a", "/inner/b", "/inner/c"} <= set(prepared)
    prepared.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=warm), base_url="http://t") as client:
        assert (await client.post("/api/c")).status_code == 200
        assert (await client.get("/mounted/inner/b")).status_code == 200
    assert prepared == []


async def test_the_started_service_answers_its_first_requests_without_preparing_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared = _count_preparations(monkeypatch)
    port = free_port()
    app = create_app(service_settings(tmp_path, port))
    async with serve_in_loop(app, port) as base:
        assert prepared, "the service prepared no route while starting"
        prepared.clear()
        async with httpx.AsyncClient(base_url=base) as web:
            for path in ("/chat", "/platform/console/login", "/healthz"):
                assert (await web.get(path)).status_code == 200, path
        assert prepared == []
