"""Rendering console pages: the Jinja2 templates, their filters, and the security headers that
every console response carries (no framing, no caching, a tight content security policy)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from seal_platform.console.labels import (
    ACTION_LABELS,
    DOCUMENT_ROLE_LABELS,
    FIELD_LABELS,
    OBJECT_TYPE_LABELS,
    ORDER_TYPE_LABELS,
    ROLE_LABELS,
    SEAL_KIND_LABELS,
    STATUS_LABELS,
    field_value,
)
from seal_platform.orders import order_code

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# Mainland China has one time zone and no daylight saving time.
CHINA_TIME = timezone(timedelta(hours=8), "CST")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        # scripts only from the console itself (the production page's progress poll)
        "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def console_base(request: Request) -> str:
    """The console's URL path, also when the platform app is mounted under a prefix."""
    return str(request.scope.get("root_path", "")).rstrip("/") + "/console"


def china_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


def yuan(fen: int | None) -> str:
    return "" if fen is None else f"¥{fen // 100}.{fen % 100:02d}"


def plain(value: Any) -> str:
    """A snapshot value as people read it: JSON for lists and objects, a dash for nothing."""
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _label(table: dict[str, str]) -> Any:
    def label(value: str | None) -> str:
        return "" if value is None else table.get(value, value)

    return label


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        china_time=china_time,
        yuan=yuan,
        plain=plain,
        status_label=_label(STATUS_LABELS),
        type_label=_label(ORDER_TYPE_LABELS),
        role_label=_label(ROLE_LABELS),
        document_label=_label(DOCUMENT_ROLE_LABELS),
        seal_kind_label=_label(SEAL_KIND_LABELS),
        action_label=_label(ACTION_LABELS),
        field_label=_label(FIELD_LABELS),
        object_label=_label(OBJECT_TYPE_LABELS),
        order_code=order_code,
    )
    env.globals["field_value"] = field_value
    return env


_ENV = _environment()


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _ENV.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
