"""Words for orders, money and dates, and the answer to an expired login, shared by the flows.

Kept apart from ``handlers.apply_common`` so that the payment steps, which the applications
embed, can use them without importing the applications back.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.engine.context import Ctx
from bot.engine.flow import Outcome, StartFlow
from bot.engine.messages import ExternalEvent

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


ORDER_CODES = "_order_codes"  # state.memory: {order id: order number} of orders this chat has seen
ORDER_CODES_KEEP = 40
UNKNOWN_NUMBER = "—"


def seen_order(ctx: Ctx, order_id: str, code: str | None) -> str:
    """Remember the order number the platform gave for ``order_id`` (its answers and events carry
    it as ``code`` / ``order_code``; the bot never derives it) and return it."""
    if not order_id or not code:
        return order_number(ctx, order_id)
    codes = {k: v for k, v in ctx.memory.get(ORDER_CODES, {}).items() if k != order_id}
    codes[order_id] = code
    ctx.memory[ORDER_CODES] = dict(list(codes.items())[-ORDER_CODES_KEEP:])
    return code


def order_number(ctx: Ctx, order_id: str) -> str:
    """The number of an order this chat was told about (every step that names an order by its
    id alone comes after an answer or event that carried the number)."""
    return str(ctx.memory.get(ORDER_CODES, {}).get(order_id) or UNKNOWN_NUMBER)


def event_order_number(ctx: Ctx, event: ExternalEvent) -> str:
    return seen_order(ctx, str(event.data.get("order_id", "")), event.data.get("order_code"))


def local_time(ctx: Ctx, moment: datetime) -> str:
    return str(moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"))
