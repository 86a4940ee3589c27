"""The staff view of expiry reminders (中文): what is coming, what became of the ones due, and
the reminders nobody could be reached for, each with a one-click "call/SMS this customer" task.

Server-rendered (no script). It has no login of its own: the composition root mounts
``reminders_console_router`` behind the support console's authentication and passes the
dependency that yields the staff session (its name is recorded on a task; its CSRF token guards
the task's form). Times are shown in the support time zone (北京时间 by default).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse

from bot.engine.ports import Clock
from scheduler.deliveries import Delivery, DeliveryStore, Followup, Status
from scheduler.planner import AFTER_EXPIRY
from scheduler.preview import PreviewLine

# Upcoming reminders for the next ``days`` (``preview_reminders`` bound to its collaborators).
Forecast = Callable[[float], Awaitable[list[PreviewLine]]]
# The account's phone number, for the staff member who calls or texts the customer.
PhoneOf = Callable[[str], Awaitable[str]]


class StaffSession(Protocol):
    @property
    def username(self) -> str: ...
    def csrf_ok(self, given: str | None) -> bool: ...
    @property
    def csrf(self) -> str: ...


STATUS_LABELS = {
    Status.PLANNED: "待发送",
    Status.DEFERRED: "已推迟",
    Status.QUEUED: "发送中",
    Status.SENT: "已送达",
    Status.UNDELIVERABLE: "无法送达",
    Status.OPTED_OUT: "用户已关闭提醒",
    Status.SUPERSEDED: "已作废（已续期/注销/有更紧急的提醒）",
}
CHANNEL_LABELS = {"chat": "聊天", "sms": "短信", "email": "邮件", "wechat": "微信", "telegram": "Telegram"}

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse;width:100%}"
    "th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;font-size:.9rem}"
    ".note{color:#a40}.sent{color:#070}.undeliverable{color:#a00}form{display:inline}"
)


def threshold_text(threshold: int) -> str:
    return "到期次日" if threshold == AFTER_EXPIRY else f"到期前 {threshold} 天"


def reminders_console_router(
    deliveries: DeliveryStore,
    forecast: Forecast,
    *,
    staff: Callable[..., Any],
    phone_of: PhoneOf,
    clock: Clock,
    zone: str = "Asia/Shanghai",
    prefix: str = "/support",
) -> APIRouter:
    router = APIRouter(prefix=prefix)
    tz = ZoneInfo(zone)
    # A default, not Annotated: ``staff`` is a local name the postponed annotations would miss.
    staff_session = Depends(staff)

    def at(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else "-"

    @router.get("/reminders", response_class=HTMLResponse)
    async def reminders_page(
        days: Annotated[float, Query(gt=0, le=120)] = 7.0,
        session: StaffSession = staff_session,
    ) -> HTMLResponse:
        upcoming = await forecast(days)
        recent = await deliveries.recent(limit=200)
        unreachable = await deliveries.recent(statuses=[Status.UNDELIVERABLE], limit=200)
        counts = await deliveries.counts()
        phones = {
            d.account_id: await phone_of(d.account_id) for d in unreachable if d.followup == Followup.OPEN
        }
        return HTMLResponse(_page(upcoming, recent, unreachable, phones, counts, days, at, session.csrf))

    async def _form_action(
        delivery_id: int, session: StaffSession, csrf: str | None, done: bool
    ) -> RedirectResponse:
        if not session.csrf_ok(csrf):
            raise HTTPException(status_code=403, detail="表单已过期，请刷新页面")
        if done:
            await deliveries.close_followup(delivery_id, session.username, clock.now())
        else:
            await deliveries.open_followup(delivery_id, session.username, clock.now())
        return RedirectResponse(f"{prefix}/reminders#unreachable", status_code=303)

    @router.post("/reminders/{delivery_id}/followup")
    async def open_task(
        delivery_id: int,
        csrf: Annotated[str | None, Form()] = None,
        session: StaffSession = staff_session,
    ) -> RedirectResponse:
        return await _form_action(delivery_id, session, csrf, done=False)

    @router.post("/reminders/{delivery_id}/followup/done")
    async def close_task(
        delivery_id: int,
        csrf: Annotated[str | None, Form()] = None,
        session: StaffSession = staff_session,
    ) -> RedirectResponse:
        return await _form_action(delivery_id, session, csrf, done=True)

    return router


def _seal(d: Delivery | PreviewLine) -> str:
    return f"{escape(d.seal_name)}<br><small>{escape(d.seal_id)}</small>"


def _task_cell(d: Delivery, phones: dict[str, str], csrf: str, at: Callable[[datetime | None], str]) -> str:
    token = f"<input type=hidden name=csrf value='{escape(csrf)}'>"
    if d.followup is None:
        return (
            f"<form method=post action='/support/reminders/{d.id}/followup'>{token}"
            "<button>电话/短信联系客户</button></form>"
        )
    if d.followup == Followup.OPEN:
        phone = escape(phones.get(d.account_id, "-"))
        return (
            f"待联系：{phone}（{escape(d.followup_by or '')} {at(d.followup_at)} 创建）"
            f"<form method=post action='/support/reminders/{d.id}/followup/done'>{token}"
            "<button>已联系</button></form>"
        )
    return f"已联系（{escape(d.followup_by or '')}，{at(d.followup_at)}）"


def _page(
    upcoming: list[PreviewLine],
    recent: list[Delivery],
    unreachable: list[Delivery],
    phones: dict[str, str],
    counts: dict[str, int],
    days: float,
    at: Callable[[datetime | None], str],
    csrf: str,
) -> str:
    summary = "，".join(f"{escape(STATUS_LABELS.get(k, k))} {v}" for k, v in sorted(counts.items())) or "暂无"
    up_rows = "".join(
        "<tr>"
        f"<td>{at(line.send_at)}</td><td>{threshold_text(line.threshold)}</td><td>{at(line.valid_to)}</td>"
        f"<td>{_seal(line)}</td><td>{escape(line.channel_key or '-')}</td>"
        f"<td class=note>{escape(line.note)}</td>"
        "</tr>"
        for line in upcoming
    )
    lost_rows = "".join(
        "<tr>"
        f"<td>{at(d.updated_at)}</td><td>{threshold_text(d.threshold)}</td><td>{at(d.valid_to)}</td>"
        f"<td>{_seal(d)}</td><td>{escape(d.reason or '')}</td><td>{_task_cell(d, phones, csrf, at)}</td>"
        "</tr>"
        for d in unreachable
    )
    recent_rows = "".join(
        "<tr>"
        f"<td>{at(d.updated_at)}</td><td>{threshold_text(d.threshold)}</td><td>{at(d.valid_to)}</td>"
        f"<td>{_seal(d)}</td>"
        f"<td class={escape(d.status)}>{escape(STATUS_LABELS.get(d.status, d.status))}</td>"
        f"<td>{escape(CHANNEL_LABELS.get(d.channel or '', d.channel or '-'))}"
        f"<br><small>{escape(d.provider_message_id or '')}</small></td>"
        f"<td>{at(d.next_attempt_at) if d.status in Status.PENDING else '-'}</td>"
        f"<td>{escape(d.reason or '')}</td>"
        "</tr>"
        for d in recent
    )
    return (
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>到期提醒</title><style>{_STYLE}</style></head><body>"
        "<h1>到期提醒</h1><p>时间均为北京时间。</p>"
        f"<p>统计：{summary}</p>"
        "<h2 id=unreachable>无法送达（需人工联系）</h2>"
        "<table><tr><th>更新时间</th><th>提醒</th><th>到期时间</th><th>印章</th><th>原因</th><th>任务</th></tr>"
        f"{lost_rows or '<tr><td colspan=6>暂无</td></tr>'}</table>"
        f"<h2>即将发送（未来 {days:g} 天）</h2>"
        "<table><tr><th>发送时间</th><th>提醒</th><th>到期时间</th><th>印章</th><th>发往</th><th>备注</th></tr>"
        f"{up_rows or '<tr><td colspan=6>暂无</td></tr>'}</table>"
        "<h2>最近记录</h2>"
        "<table><tr><th>更新时间</th><th>提醒</th><th>到期时间</th><th>印章</th><th>状态</th>"
        "<th>渠道 / 消息编号</th><th>下次尝试</th><th>原因</th></tr>"
        f"{recent_rows or '<tr><td colspan=8>暂无</td></tr>'}</table>"
        "</body></html>"
    )
