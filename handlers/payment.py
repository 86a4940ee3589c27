"""The payment wait every paid process shares: link, QR code, "I have paid", expiry.

How to use it in a flow (renewal, change, reissue, unlock, new seals)::

    from handlers.payment import is_paid, payment_steps

    steps = (
        ...,
        Action("submit", run=submit),          # stores the submitted order's id in answers
        *payment_steps("pay"),                 # waits until that order is paid
        Action("after", run=after_payment),    # runs once paid
    )

``payment_steps(name, order_key="order_id")`` returns the steps (one ``Wait``) that, on entry,
start a payment of ``answers[order_key]`` (the order must be ``awaiting_payment``), send the
pay link and its QR code image, and then wait for the platform's ``order.paid`` event. While
waiting the user may tap "I have paid" (the order is read back), "send the link again" or
"cancel the order". The wait times out at the order's payment deadline (``timeout`` is only
the fallback when the platform gives none); on timeout or on ``order.expired`` the user is
offered a new order with the same data (``@go:reorder:<order id>``, see ``handlers.orders``).

After the wait, ``is_paid(answers, name)`` is true; steps meant for after payment use it as
their ``when``. The flow ``pay_order`` (``@go:pay_order:<order id>``) is the same wait on its
own, for "pay" in My orders. Amounts, order numbers and dates are shown by the helpers of
``handlers.order_words``.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import qrcode

from bot.engine.context import Ctx
from bot.engine.flow import Action, Answers, Condition, Finish, Flow, Next, Outcome, Step, Wait
from bot.engine.messages import ExternalEvent, Option
from handlers.order_words import (
    event_order_number,
    local_time,
    money,
    order_number,
    seen_order,
    session_lost,
    status_words,
)
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.errors import NotAuthenticated, PlatformClientError
from platform_client.orders import Order

DEFAULT_PAYMENT_TIMEOUT = timedelta(minutes=30)  # the platform's default payment window
# The platform expires an unpaid order at its deadline; a payment made in the last second still
# needs its notification to arrive, so the chat waits a little longer before giving up.
DEADLINE_GRACE = timedelta(minutes=1)
# Statuses an order reaches only after it was paid.
PAID_STATUSES = frozenset(
    {
        "paid",
        "under_review",
        "rejected",
        "resubmitted",
        "approved",
        "in_production",
        "shipped",
        "awaiting_ukey",
        "completed",
    }
)
ANNOUNCED = "payment_announced"  # memory[ANNOUNCED]: order ids whose payment the chat confirmed
ANNOUNCED_KEEP = 50


def paid_key(name: str) -> str:
    return f"_paid.{name}"


def is_paid(answers: Answers, name: str = "pay") -> bool:
    """Whether the payment wait ``name`` of this run saw its order paid."""
    return bool(answers.get(paid_key(name)))


def announced(ctx: Ctx, order_id: str) -> bool:
    """Whether this chat already said that ``order_id`` is paid (the status push then keeps quiet)."""
    return order_id in ctx.memory.get(ANNOUNCED, [])


def announce_paid_once(ctx: Ctx, order_id: str, amount_fen: int) -> None:
    """Tell the user that ``order_id`` is paid, unless this chat said so already (the wait and
    the status push may both see the same payment)."""
    if announced(ctx, order_id):
        return
    ctx.memory[ANNOUNCED] = [*ctx.memory.get(ANNOUNCED, []), order_id][-ANNOUNCED_KEEP:]
    ctx.say("payment.paid", order=order_number(ctx, order_id), amount=money(amount_fen))


def _announce_paid(ctx: Ctx, name: str, order: Order | None, order_id: str, amount_fen: int | None) -> None:
    ctx.set(paid_key(name), True)
    if order is not None:
        seen_order(ctx, order.id, order.code)
    announce_paid_once(ctx, order_id, order.amount_fen if order is not None else amount_fen or 0)


async def qr_png(url: str) -> bytes:
    """A QR code of the pay link (PNG), made off the event loop."""

    def render() -> bytes:
        out = io.BytesIO()
        qrcode.make(url, box_size=6, border=2).save(out, format="PNG")
        return out.getvalue()

    return await asyncio.to_thread(render)


def payment_steps(
    name: str = "pay",
    *,
    order_key: str = "order_id",
    when: Condition | None = None,
    depends_on: tuple[str, ...] = (),
    timeout: timedelta = DEFAULT_PAYMENT_TIMEOUT,
) -> tuple[Step, ...]:
    """The steps that take payment of ``answers[order_key]``; see the module docstring."""
    payment_key = f"_payment.{name}"

    def applies(answers: Answers) -> bool:
        return (when is None or when(answers)) and not is_paid(answers, name)

    def order_id(ctx: Ctx) -> str:
        return str(ctx.get(order_key, ""))

    async def send_link(ctx: Ctx) -> Outcome | None:
        orders = services(ctx).platform.orders
        try:
            order = await orders.get(token(ctx), order_id(ctx))
            if order.status in PAID_STATUSES:
                _announce_paid(ctx, name, order, order.id, None)
                return Next()
            number = seen_order(ctx, order.id, order.code)
            if order.status != "awaiting_payment":
                ctx.say("payment.not_payable", order=number, status=status_words(ctx, order.status))
                return Finish()
            payment = await orders.start_payment(token(ctx), order.id)
        except NotAuthenticated:
            return session_lost(ctx)
        except PlatformClientError as exc:
            ctx.say_text(explain(ctx, exc))
            return Finish()
        ctx.set(payment_key, payment.id)
        if order.payment_deadline is not None:
            ctx.wait_until(order.payment_deadline + DEADLINE_GRACE)
            ctx.say(
                "payment.how_to_pay",
                order=number,
                amount=money(payment.amount_fen),
                deadline=local_time(ctx, order.payment_deadline),
            )
        else:
            ctx.say("payment.how_to_pay_no_deadline", order=number, amount=money(payment.amount_fen))
        if payment.code_url:
            ctx.link(payment.code_url, ctx.t("payment.link_caption", amount=money(payment.amount_fen)))
            qr = await ctx.media.put(
                await qr_png(payment.code_url),
                filename=f"pay-{number}.png",
                content_type="image/png",
            )
            ctx.image(qr, caption=ctx.t("payment.qr_caption"))
        return None

    def accepts(ctx: Ctx, event: ExternalEvent) -> bool:
        return event.type in {"order.paid", "order.expired", "order.cancelled"} and (
            event.data.get("order_id") == order_id(ctx)
        )

    async def on_event(ctx: Ctx, event: ExternalEvent) -> Outcome | None:
        event_order_number(ctx, event)
        if event.type == "order.paid":
            _announce_paid(ctx, name, None, order_id(ctx), event.data.get("amount_fen"))
            return None
        return _gone(ctx, event.type.removeprefix("order."), order_id(ctx))

    async def options(ctx: Ctx) -> Sequence[Option]:
        return [
            Option("check", ctx.t("payment.i_have_paid")),
            Option("resend", ctx.t("payment.resend")),
            Option("cancel_order", ctx.t("payment.cancel_order")),
        ]

    async def on_option(ctx: Ctx, choice: str) -> Outcome | None:
        try:
            if choice == "check":
                order = await services(ctx).platform.orders.get(token(ctx), order_id(ctx))
                if order.status in PAID_STATUSES:
                    _announce_paid(ctx, name, order, order.id, None)
                    return Next()
                if order.status in {"expired", "cancelled"}:
                    return _gone(ctx, order.status, order.id)
                ctx.say("payment.not_yet")
                return None
            if choice == "resend":
                return await send_link(ctx)
            if choice == "cancel_order":
                await services(ctx).platform.orders.cancel(token(ctx), order_id(ctx))
                return _gone(ctx, "cancelled", order_id(ctx))
        except NotAuthenticated:
            return session_lost(ctx)
        except PlatformClientError as exc:
            ctx.say_text(explain(ctx, exc))
            return None
        return None

    async def on_timeout(ctx: Ctx) -> Outcome | None:
        try:
            order = await services(ctx).platform.orders.get(token(ctx), order_id(ctx))
        except NotAuthenticated:
            return session_lost(ctx)
        except PlatformClientError:
            order = None
        if order is not None and order.status in PAID_STATUSES:
            _announce_paid(ctx, name, order, order.id, None)
            return Next()
        return _gone(ctx, "timeout", order_id(ctx))

    def status_params(ctx: Ctx) -> dict[str, Any]:
        return {"order": order_number(ctx, order_id(ctx))}

    return (
        Wait(
            name,
            status="payment.waiting",
            status_params=status_params,
            accepts=accepts,
            on_enter=send_link,
            on_event=on_event,
            options=options,
            on_option=on_option,
            timeout=timeout,
            on_timeout=on_timeout,
            when=applies,
            depends_on=depends_on,
        ),
    )


def _gone(ctx: Ctx, why: str, order_id: str) -> Outcome:
    """The order can no longer be paid: say why and offer the same application as a new order."""
    options = [] if why == "cancelled" else [ctx.option(f"@go:reorder:{order_id}", "payment.new_order")]
    ctx.say(f"payment.gone_{why}", order=order_number(ctx, order_id), options=options)
    return Finish(show_home=why == "cancelled")


# ---- "pay" from My orders: the same wait on its own --------------------------------------------


async def _load_order(ctx: Ctx) -> Outcome | None:
    order_id = ctx.get("order_id") or ctx.get("_arg")
    if not order_id:
        ctx.say("payment.no_order")
        return Finish()
    ctx.set("order_id", order_id)
    return None


async def _after_payment(ctx: Ctx) -> Outcome | None:
    ctx.say("payment.next_review")
    return None


PAY_ORDER = Flow(
    name="pay_order",
    version=1,
    title="payment.title",
    help="payment.help",
    requires_login=True,
    steps=(
        Action("load", run=_load_order),
        *payment_steps("pay"),
        Action("after", run=_after_payment, when=is_paid),
    ),
)

FLOWS = (PAY_ORDER,)
