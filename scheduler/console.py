"""The staff view of expiry reminders: what is coming and what became of the ones sent.

Read-only and server-rendered (no script). It has no login of its own: the composition root
mounts ``reminders_console_router`` behind the staff console's authentication.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from scheduler.deliveries import Delivery, DeliveryStore
from scheduler.planner import threshold_label
from scheduler.preview import PreviewLine

# Upcoming reminders for the next ``days`` (``preview_reminders`` bound to its collaborators).
Forecast = Callable[[float], Awaitable[list[PreviewLine]]]

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse;width:100%}"
    "th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;font-size:.9rem}"
    ".note{color:#a40}.sent{color:#070}.failed,.blocked,.no_consent{color:#a00}"
)


def reminders_console_router(
    deliveries: DeliveryStore, forecast: Forecast, *, zone: str = "Asia/Shanghai", prefix: str = "/support"
) -> APIRouter:
    router = APIRouter(prefix=prefix)
    tz = ZoneInfo(zone)

    def at(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else "-"

    @router.get("/reminders", response_class=HTMLResponse)
    async def reminders_page(days: Annotated[float, Query(gt=0, le=120)] = 7.0) -> HTMLResponse:
        upcoming = await forecast(days)
        recent = await deliveries.recent(limit=200)
        counts = await deliveries.counts()
        return HTMLResponse(_page(upcoming, recent, counts, days, at))

    return router


def _page(
    upcoming: list[PreviewLine],
    recent: list[Delivery],
    counts: dict[str, int],
    days: float,
    at: Callable[[datetime | None], str],
) -> str:
    summary = ", ".join(f"{escape(k)}: {v}" for k, v in sorted(counts.items())) or "none yet"
    up_rows = "".join(
        "<tr>"
        f"<td>{at(line.send_at)}</td><td>{escape(line.threshold_label)}</td><td>{at(line.valid_to)}</td>"
        f"<td>{escape(line.seal_name)}<br><small>{escape(line.seal_id)}</small></td>"
        f"<td>{escape(line.channel_key or '-')}</td><td class=note>{escape(line.note)}</td>"
        "</tr>"
        for line in upcoming
    )
    recent_rows = "".join(
        "<tr>"
        f"<td>{at(d.updated_at)}</td><td>{escape(threshold_label(d.threshold))}</td>"
        f"<td>{at(d.valid_to)}</td>"
        f"<td>{escape(d.seal_name)}<br><small>{escape(d.seal_id)}</small></td>"
        f"<td class={escape(d.status)}>{escape(d.status)}</td><td>{d.attempts}</td>"
        f"<td>{escape(d.channel_key or '-')} {escape(d.route or '')}</td><td>{escape(d.last_error or '')}</td>"
        "</tr>"
        for d in recent
    )
    return (
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>到期提醒 Reminders</title><style>{_STYLE}</style></head><body>"
        "<h1>到期提醒 / Expiry reminders</h1>"
        f"<p>Totals: {summary}</p>"
        f"<h2>Upcoming (next {days:g} days)</h2>"
        "<table><tr><th>send at</th><th>threshold</th><th>expires</th><th>seal</th><th>to</th><th>note</th></tr>"
        f"{up_rows or '<tr><td colspan=6>nothing due</td></tr>'}</table>"
        "<h2>Recent</h2>"
        "<table><tr><th>updated</th><th>threshold</th><th>expires</th><th>seal</th><th>status</th>"
        "<th>attempts</th><th>to</th><th>last error</th></tr>"
        f"{recent_rows or '<tr><td colspan=8>none yet</td></tr>'}</table>"
        "</body></html>"
    )
