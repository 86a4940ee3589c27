"""Turning the platform's refusals into sentences a person who read the manual understands.

Every platform error code the flows can meet maps to a catalog key under ``errors.``; a code
without an entry falls back to a generic sentence (never an HTTP status or a stack trace).
"""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.engine.i18n import Catalog
from platform_client.errors import PlatformClientError, PlatformUnavailable, RateLimited


def explain(ctx: Ctx, exc: PlatformClientError) -> str:
    return explain_in(ctx.t.catalog, ctx.locale, exc)


def explain_in(catalog: Catalog, locale: str, exc: PlatformClientError) -> str:
    """``explain`` outside a conversation step (the secure password page)."""
    if isinstance(exc, PlatformUnavailable):
        # A saturated platform ("platform_busy") has its own short sentence; any other outage
        # or failure on the platform's side is "cannot be reached".
        busy = f"errors.{exc.code}"
        return catalog.get(locale, busy if catalog.has(busy) else "errors.unavailable")
    params: dict[str, Any] = dict(exc.details or {})
    if isinstance(exc, RateLimited):
        params.setdefault("seconds", int(exc.retry_after or params.get("retry_after", 60)))
    key = f"errors.{exc.code}"
    if not catalog.has(key):
        return catalog.get(locale, "errors.generic")
    if "max_bytes" in params:
        params.setdefault("limit", _megabytes(params["max_bytes"]))
    if "status" in params:
        status_key = f"orders.status.{params['status']}"
        if catalog.has(status_key):
            params["status"] = catalog.get(locale, status_key)
    # A template may name a detail the platform did not send this time: show it empty.
    wanted = catalog.placeholders(locale, key)
    return catalog.get(locale, key, **{name: params.get(name, "") for name in wanted})


def _megabytes(size: Any) -> str:
    try:
        return f"{int(size) / (1024 * 1024):g} MB"
    except (TypeError, ValueError):
        return "10 MB"
