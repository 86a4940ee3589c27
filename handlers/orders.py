"""My orders (我的订单) and the status pushes of orders (manual 1.2.7-1.2.9).

``my_orders`` lists the account's orders with their status in words; picking one shows its
detail and, as buttons, what can be done now: pay or cancel an unpaid order, fix and resubmit a
rejected one, place an expired one again, ask for the invoice of a paid one, track a parcel.
Each button is a global ``@go:<flow>:<order id>`` token, so it keeps working from a push
received days later.

``EVENT_HANDLERS`` turn the platform's ``order.<status>`` events into messages, so every change
reaches the chat without being asked: paid, under review, rejected (with the reviewer's reason
and a button to fix it), approved, in production (with the seal impression), shipped (SF
waybill and tracking link), completed, expired (with a button to order again).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, Outcome, StartFlow
from bot.engine.messages import ExternalEvent, Option
from handlers.menu import MenuItem
from handlers.order_words import (
    event_order_number,
    local_time,
    money,
    seen_order,
    session_lost,
    status_words,
    type_words,
)
from handlers.payment import PAID_STATUSES, announce_paid_once
from handlers.platform_errors import explain
from handlers.reminders import offer_consent
from handlers.services import services, token
from platform_client.errors import NotAuthenticated, PlatformClientError
from platform_client.invoices import Invoice
from platform_client.orders import Order, OrderTransition

LISTED = 10  # the most recent orders shown in the list
NEW_SEAL_TYPES = frozenset({"enterprise_seal", "personal_seal", "bundle"})
REORDERABLE = frozenset({*NEW_SEAL_TYPES, "reissue", "change", "renewal", "unlock"})


def order_label(ctx: Ctx, order: Order) -> str:
    return ctx.t(
        "orders.list_item",
        order=seen_order(ctx, order.id, order.code),
        process=type_words(ctx, order.type),
        status=status_words(ctx, order.status),
        amount=money(order.amount_fen),
        date=local_time(ctx, order.created_at)[:10],
    )


# The path of each kind of order, for the timeline's steps still to come.
_NEW_SEAL_PATH = (
    "awaiting_payment",
    "paid",
    "under_review",
    "approved",
    "in_production",
    "shipped",
    "completed",
)
PATHS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(NEW_SEAL_TYPES, _NEW_SEAL_PATH),
    "reissue": ("awaiting_payment", "paid", "in_production", "shipped", "completed"),
    "renewal": ("awaiting_payment", "paid", "awaiting_ukey", "completed"),
    "unlock": ("awaiting_payment", "paid", "awaiting_ukey", "completed"),
    "change": ("awaiting_payment", "paid", "under_review", "approved", "awaiting_ukey", "completed"),
    "cancellation": ("completed",),
}
ENDED = frozenset({"cancelled", "expired", "completed"})


def timeline(
    ctx: Ctx, order: Order, history: Sequence[OrderTransition], invoice: Invoice | None
) -> list[str]:
    """One line per step the order went through (with its time), then the steps still to come:
    submitted, paid, review, approved, produced, shipped with the waybill, received, invoiced."""
    lines = [ctx.t("orders.timeline_title")]
    reached: list[str] = []
    for change in history:
        if change.to_status == "draft":
            continue
        words = ctx.t(
            f"orders.timeline.{change.to_status}", waybill=order.waybill or "", reason=change.reason or ""
        )
        lines.append(ctx.t("orders.timeline_done", at=local_time(ctx, change.at), step=words))
        reached.append(change.to_status)
    if order.status not in {"cancelled", "expired"}:
        path = PATHS.get(order.type, ())
        last = max((path.index(s) for s in reached if s in path), default=-1)
        for status in path[last + 1 :]:
            lines.append(
                ctx.t("orders.timeline_todo", step=ctx.t(f"orders.timeline.{status}", waybill="", reason=""))
            )
    if invoice is not None and invoice.status == "issued" and invoice.issued_at is not None:
        step = ctx.t("orders.timeline.invoiced", number=invoice.invoice_number or "")
        lines.append(ctx.t("orders.timeline_done", at=local_time(ctx, invoice.issued_at), step=step))
    elif invoice is not None:
        step = ctx.t("orders.timeline.invoice_requested")
        lines.append(ctx.t("orders.timeline_done", at=local_time(ctx, invoice.requested_at), step=step))
    return lines


def actions_for(ctx: Ctx, order: Order, invoice: Invoice | None = None) -> list[Option]:
    """What the applicant can do with ``order`` now, as global buttons: only what can succeed
    (no 申请发票 once an invoice is requested; its PDF instead, once issued)."""
    options: list[Option] = []
    if order.status == "awaiting_payment":
        options.append(ctx.option(f"@go:pay_order:{order.id}", "orders.do_pay"))
    if order.status in {"draft", "awaiting_payment"}:
        options.append(ctx.option(f"@go:cancel_order:{order.id}", "orders.do_cancel"))
    if order.status == "rejected":
        options.append(ctx.option(f"@go:resubmit:{order.id}", "orders.do_resubmit"))
    if order.status == "expired" and order.type in REORDERABLE:
        options.append(ctx.option(f"@go:reorder:{order.id}", "orders.do_reorder"))
    if invoice is not None and invoice.status == "issued":
        options.append(ctx.option(f"@go:invoice_pdf:{invoice.id}", "orders.do_invoice_pdf"))
    elif invoice is None and order.status in PAID_STATUSES and order.amount_fen > 0:
        options.append(ctx.option(f"@go:invoice:{order.id}", "orders.do_invoice"))
    options.append(ctx.option("@go:my_orders", "orders.do_list"))
    return options


# ---- my orders --------------------------------------------------------------------------------


async def load_orders(ctx: Ctx) -> Outcome | None:
    try:
        orders = await services(ctx).platform.orders.list_orders(token(ctx))
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    listed = [o for o in orders if o.status != "draft" or o.type not in NEW_SEAL_TYPES][:LISTED]
    if not listed:
        ctx.say(
            "orders.none",
            options=[
                ctx.option("@go:apply_enterprise", "apply.title_enterprise"),
                ctx.option("@go:apply_personal", "apply.title_personal"),
            ],
        )
        return Finish(show_home=False)
    # The labels are kept so the list reads the same when the step is asked again.
    ctx.set("_orders", [[o.id, order_label(ctx, o)] for o in listed])
    return None


async def order_options(ctx: Ctx) -> Sequence[Option]:
    return [Option(order_id, label) for order_id, label in ctx.get("_orders", [])]


async def show_detail(ctx: Ctx) -> Outcome | None:
    platform = services(ctx).platform
    try:
        order = await platform.orders.get(token(ctx), ctx.get("order"))
        history = await platform.orders.history(token(ctx), order.id)
        invoices = await platform.invoices.list_invoices(token(ctx))
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    invoice = next((i for i in invoices if i.order_id == order.id), None)
    say_detail(ctx, order, history, invoice)
    return Finish(show_home=False)


def say_detail(
    ctx: Ctx, order: Order, history: Sequence[OrderTransition] = (), invoice: Invoice | None = None
) -> None:
    lines = [
        ctx.t(
            "orders.detail_head",
            order=seen_order(ctx, order.id, order.code),
            process=type_words(ctx, order.type),
        ),
        ctx.t("orders.detail_status", status=status_words(ctx, order.status)),
        ctx.t("orders.detail_amount", amount=money(order.amount_fen)),
        ctx.t("orders.detail_created", date=local_time(ctx, order.created_at)),
    ]
    if order.years:
        lines.append(ctx.t("orders.detail_years", years=order.years))
    if order.status == "awaiting_payment" and order.payment_deadline is not None:
        lines.append(ctx.t("orders.detail_deadline", deadline=local_time(ctx, order.payment_deadline)))
    if order.reject_reason:
        lines.append(ctx.t("orders.detail_reason", reason=order.reject_reason))
    if order.waybill:
        lines.append(ctx.t("orders.detail_waybill", waybill=order.waybill))
    if history:
        lines += ["", *timeline(ctx, order, history, invoice)]
    if order.tracking_url:
        # the link button comes first, the order's actions stay under the last message
        ctx.say_text("\n".join(lines))
        ctx.link(order.tracking_url, ctx.t("orders.track", waybill=order.waybill or ""))
        ctx.say("orders.what_next", options=actions_for(ctx, order, invoice))
        return
    ctx.say_text("\n".join(lines), options=actions_for(ctx, order, invoice))


MY_ORDERS = Flow(
    name="my_orders",
    version=1,
    title="orders.title",
    help="orders.help",
    requires_login=True,
    steps=(
        Action("load", run=load_orders),
        Choice("order", prompt="orders.ask_order", label="orders.order", options=order_options),
        Action("detail", run=show_detail, depends_on=("order",)),
    ),
)


# ---- cancel an unpaid order -------------------------------------------------------------------


async def load_cancellable(ctx: Ctx) -> Outcome | None:
    order_id = ctx.get("_arg")
    try:
        order = await services(ctx).platform.orders.get(token(ctx), order_id)
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    if order.status not in {"draft", "awaiting_payment"}:
        ctx.say(
            "orders.not_cancellable",
            order=seen_order(ctx, order.id, order.code),
            status=status_words(ctx, order.status),
        )
        return Finish()
    ctx.set("order_id", order.id)
    ctx.set("_order_label", order_label(ctx, order))
    return None


async def cancel(ctx: Ctx) -> Outcome | None:
    if ctx.get("confirm") != "yes":
        ctx.say("orders.kept")
        return None
    try:
        order = await services(ctx).platform.orders.cancel(token(ctx), ctx.get("order_id"))
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    ctx.say("orders.cancelled", order=seen_order(ctx, order.id, order.code))
    return None


CANCEL_ORDER = Flow(
    name="cancel_order",
    version=1,
    title="orders.cancel_title",
    requires_login=True,
    steps=(
        Action("load", run=load_cancellable),
        Choice(
            "confirm",
            prompt="orders.ask_cancel",
            label="orders.cancel_title",
            options=(Option("yes", "orders.cancel_yes"), Option("no", "orders.cancel_no")),
            prompt_params=lambda ctx: {"order": ctx.get("_order_label", "")},
        ),
        Action("cancel", run=cancel, depends_on=("confirm",)),
    ),
)


# ---- the same order again (after it expired unpaid) -------------------------------------------


async def reorder(ctx: Ctx) -> Outcome | None:
    """A new order with the expired one's data (company, scans, address, years), submitted and
    ready to pay; the idempotency key keeps a retried step from making two."""
    orders = services(ctx).platform.orders
    try:
        old = await orders.get(token(ctx), ctx.get("_arg"))
        if old.type not in REORDERABLE or old.status not in {"expired", "cancelled"}:
            ctx.say(
                "orders.not_reorderable",
                order=seen_order(ctx, old.id, old.code),
                status=status_words(ctx, old.status),
            )
            return Finish()
        body: dict[str, object] = {"type": old.type, "documents": dict(old.documents)}
        if old.seal_id:
            body["seal_id"] = old.seal_id
        else:
            body["company_id"] = old.company_id
        if old.years:
            body["years"] = old.years
        if old.mailing_address:
            body["mailing_address"] = dict(old.mailing_address)
        if old.details.get("change"):
            body["change"] = dict(old.details["change"])
        new = await orders.create(token(ctx), body, idempotency_key=ctx.idempotency_key("reorder"))
        if new.status == "draft":
            new = await orders.submit(token(ctx), new.id)
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    ctx.say(
        "orders.reordered",
        old=seen_order(ctx, old.id, old.code),
        order=seen_order(ctx, new.id, new.code),
        amount=money(new.amount_fen),
    )
    return StartFlow("pay_order", prefill={"order_id": new.id})


REORDER = Flow(
    name="reorder",
    version=1,
    title="orders.reorder_title",
    requires_login=True,
    steps=(Action("reorder", run=reorder),),
)


# ---- status pushes ------------------------------------------------------------------------------


def _order_id(event: ExternalEvent) -> str:
    return str(event.data.get("order_id", ""))


def _process(ctx: Ctx, event: ExternalEvent) -> str:
    return type_words(ctx, str(event.data.get("order_type", "")))


async def on_paid(ctx: Ctx, event: ExternalEvent) -> None:
    event_order_number(ctx, event)  # remembered for the announcement
    announce_paid_once(ctx, _order_id(event), int(event.data.get("amount_fen") or 0))


async def on_under_review(ctx: Ctx, event: ExternalEvent) -> None:
    key = (
        "orders.push_resubmitted_review"
        if event.data.get("from") == "resubmitted"
        else "orders.push_under_review"
    )
    ctx.say(key, order=event_order_number(ctx, event), process=_process(ctx, event))


async def on_rejected(ctx: Ctx, event: ExternalEvent) -> None:
    order_id = _order_id(event)
    ctx.say(
        "orders.push_rejected",
        order=event_order_number(ctx, event),
        process=_process(ctx, event),
        reason=event.data.get("reason") or ctx.t("orders.no_reason"),
        options=[
            ctx.option(f"@go:resubmit:{order_id}", "orders.do_resubmit"),
            ctx.option("@human", "orders.ask_human"),
        ],
    )


async def on_approved(ctx: Ctx, event: ExternalEvent) -> None:
    ctx.say("orders.push_approved", order=event_order_number(ctx, event), process=_process(ctx, event))


async def on_in_production(ctx: Ctx, event: ExternalEvent) -> None:
    ctx.say("orders.push_in_production", order=event_order_number(ctx, event), process=_process(ctx, event))
    if ctx.session is None:
        return
    # The impression exists from production on: show the applicant what their seal looks like.
    seals = services(ctx).platform.seals
    for seal_id in event.data.get("seal_ids", []):
        try:
            seal = await seals.get(token(ctx), str(seal_id))
            png = await seals.impression_png(token(ctx), str(seal_id))
        except PlatformClientError:
            continue  # the preview is a courtesy; the status message has been said
        image = await ctx.media.put(png, filename=f"seal-{str(seal_id)[:8]}.png", content_type="image/png")
        # A bundle makes two seals: each image says which one it is.
        kind = ctx.t(f"seals.kind_{seal.kind}")
        ctx.image(image, caption=ctx.t("orders.impression_caption", kind=kind, holder=seal.holder_name))


async def on_shipped(ctx: Ctx, event: ExternalEvent) -> None:
    waybill = str(event.data.get("waybill", ""))
    ctx.say(
        "orders.push_shipped",
        order=event_order_number(ctx, event),
        process=_process(ctx, event),
        waybill=waybill,
    )
    url = event.data.get("tracking_url")
    if url:
        ctx.link(str(url), ctx.t("orders.track", waybill=waybill))


async def on_completed(ctx: Ctx, event: ExternalEvent) -> None:
    ctx.say("orders.push_completed", order=event_order_number(ctx, event), process=_process(ctx, event))
    # A natural moment to ask a WeChat user to allow the seal's expiry reminders.
    offer_consent(ctx)


async def on_expired(ctx: Ctx, event: ExternalEvent) -> None:
    order_id = _order_id(event)
    ctx.say(
        "orders.push_expired",
        order=event_order_number(ctx, event),
        process=_process(ctx, event),
        options=[ctx.option(f"@go:reorder:{order_id}", "orders.do_reorder")],
    )


FLOWS = (MY_ORDERS, CANCEL_ORDER, REORDER)

MENU = (MenuItem("my_orders", "orders.title", visible=lambda ctx: ctx.logged_in, order=30),)

INTENTS = {
    "my_orders": (
        "我的订单",
        "查看订单",
        "订单状态",
        "办理进度",
        "查进度",
        "订单查询",
        "my orders",
        "order status",
        "check my order",
        "track my order",
        "where is my seal",
    ),
}

EVENT_HANDLERS = {
    "order.paid": on_paid,
    "order.under_review": on_under_review,
    "order.rejected": on_rejected,
    "order.approved": on_approved,
    "order.in_production": on_in_production,
    "order.shipped": on_shipped,
    "order.completed": on_completed,
    "order.expired": on_expired,
}
