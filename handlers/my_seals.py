"""我的印章 (the manual's 证章信息): the account's seals, and what can be done with each one now.

Also the building blocks every process on an existing seal shares: picking the seal (a button
``@go:renew:<seal_id>`` arrives with it chosen), creating and submitting its order once (an
idempotency key per run), paying, and telling the user where an order stands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.engine.context import Ctx
from bot.engine.flow import (
    Action,
    Choice,
    Finish,
    Flow,
    Outcome,
    StartFlow,
    Step,
)
from bot.engine.messages import ExternalEvent, Option
from handlers.menu import MenuItem
from handlers.order_words import order_number, seen_order, session_lost, status_words, type_words
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.errors import NotAuthenticated, PlatformClientError
from platform_client.orders import Order
from platform_client.seals import Seal

CHINA = ZoneInfo("Asia/Shanghai")
# Order statuses in which the platform counts an order as still going on for its seal.
OPEN_STATUSES = frozenset(
    {
        "awaiting_payment",
        "paid",
        "under_review",
        "rejected",
        "resubmitted",
        "approved",
        "in_production",
        "shipped",
        "awaiting_ukey",
    }
)
# Which seal statuses each process may start from (the platform enforces the same table).
ELIGIBLE: dict[str, frozenset[str]] = {
    "renew": frozenset({"active", "locked", "expired"}),
    "change": frozenset({"active", "locked"}),
    "reissue": frozenset({"active", "locked", "expired"}),
    "unlock": frozenset({"active", "locked"}),
    "pin_change": frozenset({"active", "expired"}),
    "cancel_seal": frozenset({"active", "locked", "expired"}),
}


def local_date(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).date().isoformat() if moment is not None else "-"


def yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def seal_line(ctx: Ctx, seal: Seal) -> str:
    return ctx.t(
        "seals.line",
        kind=ctx.t(f"seals.kind_{seal.kind}"),
        holder=seal.holder_name,
        status=ctx.t(f"seals.status_{seal.status}"),
        expires=local_date(seal.valid_to),
    )


async def on_platform_error(ctx: Ctx, exc: PlatformClientError) -> Outcome:
    """Plain words for a refusal; an expired login sends the user to log in again."""
    if isinstance(exc, NotAuthenticated):
        return session_lost(ctx)
    if exc.code == "renewal_window_closed":
        opens = exc.details.get("opens_at")
        ctx.say("renewal.too_early", date=local_date(datetime.fromisoformat(opens)) if opens else "-")
        return Finish()
    if exc.code == "seal_busy":
        ctx.say("seals.busy", options=[ctx.option("@go:my_seals", "seals.title")])
        return Finish(show_home=False)
    specific = f"seals.error_{exc.code}"
    ctx.say_text(ctx.t(specific) if ctx.t.catalog.has(specific) else explain(ctx, exc))
    return Finish()


# ---- choosing the seal a process acts on ---------------------------------------------------------


async def account_seals(ctx: Ctx) -> list[Seal]:
    return await services(ctx).platform.seals.list_seals(token(ctx))


def seal_steps(process: str) -> tuple[Step, ...]:
    """The seal: given with the button (``_arg``), or picked from the seals this process fits."""
    allowed = ELIGIBLE[process]

    async def preset(ctx: Ctx) -> Outcome | None:
        try:
            seals = [s for s in await account_seals(ctx) if s.status in allowed]
        except PlatformClientError as exc:
            return await on_platform_error(ctx, exc)
        wanted = ctx.get("_arg")
        chosen = next((s for s in seals if s.id == wanted), None)
        if chosen is None and len(seals) == 1:
            chosen = seals[0]
        if chosen is not None:
            ctx.set("seal_id", chosen.id)
            ctx.set("_label.seal_id", seal_line(ctx, chosen))
        elif not seals:
            ctx.say("seals.none_for_process", options=[ctx.option("@go:my_seals", "seals.title")])
            return Finish(show_home=False)
        return None

    async def options(ctx: Ctx) -> Sequence[Option]:
        seals = [s for s in await account_seals(ctx) if s.status in allowed]
        return [Option(s.id, seal_line(ctx, s)) for s in seals]

    return (
        Action("preset_seal", run=preset),
        Choice("seal_id", prompt="seals.ask_seal", label="seals.seal", options=options),
    )


async def chosen_seal(ctx: Ctx) -> Seal:
    return await services(ctx).platform.seals.get(token(ctx), ctx.get("seal_id"))


# ---- the order: created once per run, submitted for payment --------------------------------------


def order_action(
    name: str, body: Callable[[Ctx], dict[str, Any]], *, submit: bool = True, depends_on: tuple[str, ...] = ()
) -> Action:
    """Create the draft (once per run, whatever retries happen) and, unless told not to, submit it."""

    async def run(ctx: Ctx) -> Outcome | None:
        orders = services(ctx).platform.orders
        try:
            order = await orders.create(
                token(ctx), body(ctx), idempotency_key=ctx.idempotency_key(f"order:{ctx.get('seal_id')}")
            )
            if submit and order.status == "draft":
                order = await orders.submit(token(ctx), order.id)
        except PlatformClientError as exc:
            return await on_platform_error(ctx, exc)
        ctx.set("order_id", order.id)
        ctx.set("amount_fen", order.amount_fen)
        return None

    return Action(name, run=run, depends_on=depends_on)


async def current_order(ctx: Ctx) -> Order:
    return await services(ctx).platform.orders.get(token(ctx), ctx.get("order_id"))


def order_status_text(ctx: Ctx, order: Order) -> str:
    return ctx.t(
        "seals.order_status",
        process=type_words(ctx, order.type),
        order=seen_order(ctx, order.id, order.code),
        status=status_words(ctx, order.status),
    )


def event_for_order(ctx: Ctx, event: ExternalEvent, *types: str) -> bool:
    return event.type in types and event.data.get("order_id") == ctx.get("order_id")


# Orders that can no longer go on: a run holding one starts afresh when it is taken up again.
ENDED_STATUSES = frozenset({"cancelled", "expired"})


async def resume_order_run(ctx: Ctx) -> Outcome | None:
    """``Flow.on_resume`` of the processes on a seal: a run put aside whose order was cancelled
    or expired meanwhile (in another chat, by the payment deadline) is not continued; the same
    process starts anew for the same seal, and the user is told why in one line."""
    order_id = ctx.get("order_id")
    if not order_id:
        return None
    try:
        order = await current_order(ctx)
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError:
        order = None  # unknown to the platform now: as good as ended
    if order is not None and order.status not in ENDED_STATUSES:
        return None
    process = ctx.t(ctx.flow.title) if ctx.flow else ""
    reason = status_words(ctx, order.status) if order is not None else status_words(ctx, "cancelled")
    number = seen_order(ctx, order.id, order.code) if order is not None else order_number(ctx, order_id)
    ctx.say("seals.resume_order_ended", process=process, order=number, status=reason)
    prefill = {"_arg": ctx.get("seal_id")} if ctx.get("seal_id") else {}
    return StartFlow(ctx.run.flow, prefill=prefill)


# ---- after paying ------------------------------------------------------------------------------


def to_ukey(ctx: Ctx) -> Outcome:
    """The UKey step takes over this run's order (its own flow, so it can be resumed by itself)."""
    return StartFlow("ukey", prefill={"_arg": ctx.get("order_id")})


async def go_to_ukey(ctx: Ctx) -> Outcome | None:
    return to_ukey(ctx)


# ---- 我的印章 -----------------------------------------------------------------------------------


async def list_seals(ctx: Ctx) -> Outcome | None:
    try:
        seals = await account_seals(ctx)
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    if not seals:
        ctx.say("seals.none", options=[ctx.option("@go:apply_enterprise", "seals.apply")])
        return Finish(show_home=False)
    ctx.say_text(
        "\n".join([ctx.t("seals.list_title"), *(f"{i}. {seal_line(ctx, s)}" for i, s in enumerate(seals, 1))])
    )
    if ctx.get("_arg") in {s.id for s in seals}:
        ctx.set("seal_id", ctx.get("_arg"))
    return None


async def seal_options(ctx: Ctx) -> Sequence[Option]:
    return [Option(s.id, seal_line(ctx, s)) for s in await account_seals(ctx)]


def processes_for(ctx: Ctx, seal: Seal, open_order: Order | None) -> list[Option]:
    if open_order is not None:
        if open_order.status == "awaiting_ukey":
            return [ctx.option(f"@go:ukey:{open_order.id}", "seals.do_ukey")]
        return []
    options: list[Option] = []
    if seal.status in ELIGIBLE["renew"] and seal.renewable_now:
        options.append(ctx.option(f"@go:renew:{seal.id}", "renewal.title"))
    for process, label in (
        ("change", "change.title"),
        ("reissue", "reissue.title"),
        ("unlock", "unlock.title"),
        ("pin_change", "ukey.pin.title"),
        ("cancel_seal", "cancel.title"),
    ):
        if seal.status in ELIGIBLE[process]:
            options.append(ctx.option(f"@go:{process}:{seal.id}", label))
    return options


async def show_seal(ctx: Ctx) -> Outcome | None:
    platform = services(ctx).platform
    try:
        seal = await chosen_seal(ctx)
        orders = await platform.orders.list_orders(token(ctx))
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    open_order = next((o for o in orders if o.seal_id == seal.id and o.status in OPEN_STATUSES), None)
    lines = [
        ctx.t(
            "seals.detail",
            kind=ctx.t(f"seals.kind_{seal.kind}"),
            holder=seal.holder_name,
            code=seal.seal_code,
            status=ctx.t(f"seals.status_{seal.status}"),
            valid_from=local_date(seal.valid_from),
            valid_to=local_date(seal.valid_to),
            serial=seal.key_serial or "-",
        )
    ]
    if open_order is not None:
        lines.append(order_status_text(ctx, open_order))
    elif seal.status in ELIGIBLE["renew"] and not seal.renewable_now and seal.renewal_opens_at is not None:
        lines.append(ctx.t("renewal.opens_on", date=local_date(seal.renewal_opens_at)))
    options = processes_for(ctx, seal, open_order)
    options.append(ctx.option("@go:my_seals", "seals.back_to_list"))
    ctx.say_text("\n".join(lines), options=options)
    return Finish(show_home=False)


MY_SEALS = Flow(
    name="my_seals",
    version=1,
    title="seals.title",
    help="seals.help",
    requires_login=True,
    steps=(
        Action("list", run=list_seals),
        Choice("seal_id", prompt="seals.ask_which", label="seals.seal", options=seal_options),
        Action("show", run=show_seal, depends_on=("seal_id",)),
    ),
)

FLOWS = (MY_SEALS,)

MENU = (MenuItem("my_seals", "seals.title", visible=lambda ctx: ctx.logged_in, order=30),)

INTENTS = {
    "my_seals": (
        "我的印章",
        "印章列表",
        "证章信息",
        "查看印章",
        "我的证章",
        "my seals",
        "list my seals",
        "show my seals",
        "seal list",
        "view seals",
    ),
}

__all__ = [
    "ELIGIBLE",
    "account_seals",
    "chosen_seal",
    "current_order",
    "event_for_order",
    "go_to_ukey",
    "local_date",
    "on_platform_error",
    "order_action",
    "order_status_text",
    "resume_order_run",
    "seal_line",
    "seal_steps",
    "to_ukey",
    "yuan",
]
