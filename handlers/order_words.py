"""Words for orders, money and dates, and the answer to an expired login, shared by the flows.

Kept apart from ``handlers.apply_common`` so that the payment steps, which the applications
embed, can use them without importing the applications back.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.engine.context import Ctx
from bot.engine.flow import Outcome, StartFlow

CHINA = timezone(timedelta(hours=8), "CST")  # no daylight saving: a fixed offset is exact


def session_lost(ctx: Ctx) -> Outcome:
    """The account token expired: log in again, then continue this process where it was."""
    ctx.logout()
    ctx.say("accounts.session_expired")
    return StartFlow("login", resume=True)


def money(fen: int) -> str:
    return f"¥{fen / 100:.2f}"


def status_words(ctx: Ctx, status: str) -> str:
    key = f"orders.status.{status}"
    return ctx.t(key) if ctx.t.catalog.has(key) else status


def type_words(ctx: Ctx, order_type: str) -> str:
    key = f"orders.type.{order_type}"
    return ctx.t(key) if ctx.t.catalog.has(key) else order_type


def short_id(order_id: str) -> str:
    """The order number users see and say, the same one the platform prints on the pay page,
    the forms and the invoice (``seal_platform.orders.order_code``; the bot does not import the
    platform, so the one-line rule is repeated here)."""
    return order_id[:8].upper()


def local_time(ctx: Ctx, moment: datetime) -> str:
    return str(moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"))
