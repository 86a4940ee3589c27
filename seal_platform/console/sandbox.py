"""The sandbox clock of a non-production platform: set when a seal expires (``/console/sandbox``).

Trying reminders and renewals without waiting 60 days: a staff member picks a live seal and
gives the days until it expires (negative: already expired). The change is audited like any
staff action, and moves the seal's ``updated_at`` so the bot's reminder job plans it on its next
pass. Mounted only when the platform is not in production mode (``seal_platform.app``); the
handler refuses as well, should it be mounted by mistake.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse, Response

from seal_platform.console.auth import ConsoleContext, action, page
from seal_platform.console.rendering import SECURITY_HEADERS, render
from seal_platform.console.router import ConsoleRoute
from seal_platform.errors import Forbidden, InvalidInput, NotFound
from seal_platform.seals import Seal, SealStatus, as_utc
from seal_platform.staff_actions import record_audit

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

AnyStaff = Annotated[ConsoleContext, Depends(page())]
AnyStaffAction = Annotated[ConsoleContext, Depends(action())]
SETTABLE = (SealStatus.ACTIVE.value, SealStatus.LOCKED.value, SealStatus.EXPIRED.value)
# How far the sandbox clock may move a seal's expiry, either way.
MAX_DAYS = 3660
BEIJING = ZoneInfo("Asia/Shanghai")


def _refuse_in_production(ctx: ConsoleContext) -> None:
    if ctx.services.settings.production:
        raise Forbidden("生产环境不能修改印章有效期。", code="sandbox_only")


@router.get("/sandbox")
async def sandbox_page(ctx: AnyStaff, done: str | None = None) -> Response:
    _refuse_in_production(ctx)
    async with ctx.services.db.session() as session:
        seals = list(
            await session.scalars(
                sa.select(Seal).where(Seal.status.in_(SETTABLE)).order_by(Seal.updated_at.desc()).limit(100)
            )
        )
    now = ctx.services.clock.now()
    rows = [
        {
            "id": s.id,
            "name": s.holder_name,
            "kind": s.kind,
            "status": s.status,
            "valid_to": as_utc(s.valid_to).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
            if s.valid_to
            else "-",
            "days_left": (as_utc(s.valid_to) - now).days if s.valid_to else None,
        }
        for s in seals
    ]
    return render("sandbox.html", ctx=ctx, nav=[], active="sandbox", base=ctx.base, seals=rows, done=done)


@router.post("/sandbox/seals/{seal_id}/expiry")
async def set_expiry(seal_id: str, ctx: AnyStaffAction, days: Annotated[str, Form()]) -> Response:
    _refuse_in_production(ctx)
    try:
        offset = int(days.strip())
    except ValueError as exc:
        raise InvalidInput("到期天数须为整数（负数表示已过期）。", code="bad_days") from exc
    if abs(offset) > MAX_DAYS:
        raise InvalidInput(f"到期天数须在 -{MAX_DAYS} 到 {MAX_DAYS} 之间。", code="bad_days")
    now = ctx.services.clock.now()
    async with ctx.services.db.session() as session:
        seal = await session.get(Seal, seal_id)
        if seal is None or seal.status not in SETTABLE:
            raise NotFound("找不到该印章，或印章未生效。", seal_id=seal_id)
        before = as_utc(seal.valid_to).isoformat() if seal.valid_to else None
        seal.valid_to = now + timedelta(days=offset)
        # Past its new expiry a seal is expired; an expired seal given time back is active.
        if offset <= 0 and seal.status == SealStatus.ACTIVE.value:
            seal.status = SealStatus.EXPIRED.value
        elif offset > 0 and seal.status == SealStatus.EXPIRED.value:
            seal.status = SealStatus.ACTIVE.value
        seal.updated_at = now
        record_audit(
            session,
            actor=ctx.staff.username,
            action="sandbox.set_expiry",
            object_type="seal",
            object_id=seal.id,
            before={"valid_to": before},
            after={"valid_to": seal.valid_to.isoformat(), "status": seal.status},
            at=now,
        )
    return RedirectResponse(f"{ctx.base}/sandbox?done={seal_id}", status_code=303, headers=SECURITY_HEADERS)
