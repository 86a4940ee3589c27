"""注销 (manual 1.3.4, second of that number): what cancelling means, an SMS code to the
account's phone, the code typed in the chat, done. Nothing is paid.

The platform keeps the rules of the code (5 minutes, a few tries, only the newest counts); the
flow explains each refusal and sends a new code when the old one cannot be used any more.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, Outcome
from bot.engine.messages import Option
from handlers.accounts import captcha_step
from handlers.confirm_steps import code_field, code_refused, code_sender, confirm_steps
from handlers.my_seals import (
    chosen_seal,
    local_date,
    on_platform_error,
    resume_order_run,
    seal_line,
    seal_steps,
)
from handlers.next_steps import AFTER_SEAL_PROCESS
from handlers.order_words import money, order_number, seen_order, status_words, type_words
from handlers.services import services, token
from platform_client.errors import PlatformClientError, RateLimited


async def describe(ctx: Ctx) -> Outcome | None:
    try:
        seal = await chosen_seal(ctx)
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    ctx.set("seal_text", seal_line(ctx, seal))
    return None


async def make_order(ctx: Ctx) -> Outcome | None:
    try:
        order = await services(ctx).platform.orders.create(
            token(ctx),
            {"type": "cancellation", "seal_id": ctx.get("seal_id")},
            idempotency_key=ctx.idempotency_key(f"cancel:{ctx.get('seal_id')}"),
        )
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    ctx.set("order_id", order.id)
    return None


async def _send_refused(ctx: Ctx, exc: PlatformClientError) -> Outcome | None:
    if isinstance(exc, RateLimited):
        # a code went out moments ago: it may still work; if not, any answer after the wait
        # comes back here and sends a new one
        ctx.say("cancel.resend_wait", seconds=int(exc.retry_after or exc.details.get("retry_after", 60)))
        return None
    return await on_platform_error(ctx, exc)


async def confirm_cancellation(ctx: Ctx) -> Outcome | None:
    try:
        order = await services(ctx).platform.orders.confirm_cancellation(
            token(ctx), ctx.get("order_id"), ctx.get("code")
        )
    except PlatformClientError as exc:
        again = code_refused(
            ctx, exc, wrong="cancel.code_wrong", expired="cancel.code_expired", used_up="cancel.code_used_up"
        )
        if again is not None:
            return again
        if exc.code == "seal_busy":
            # the code stays valid: once that order is finished or withdrawn, the user can return
            return _busy(ctx, dict(exc.details or {}))
        return await on_platform_error(ctx, exc)
    at = order.result.get("seal_cancelled_at")
    ctx.say(
        "cancel.done",
        seal=ctx.get("seal_text", ""),
        date=local_date(datetime.fromisoformat(at)) if at else local_date(ctx.now),
    )
    return None


def _busy(ctx: Ctx, details: dict[str, Any]) -> Outcome | None:
    """A paid order on the seal is in progress. When the platform allows it (nothing was made
    for it yet) the user is offered to withdraw it with a refund, confirming first; otherwise
    the chat says to wait for it (or ask support)."""
    order_type, status = str(details.get("order_type", "")), str(details.get("status", ""))
    if details.get("withdrawable") and details.get("order_id"):
        ctx.set("busy_order_id", str(details["order_id"]))
        ctx.set("busy_order_type", order_type)
        ctx.set("busy_amount_fen", int(details.get("amount_fen") or 0))
        ctx.say(
            "cancel.busy_withdrawable",
            order=type_words(ctx, order_type),
            code=seen_order(ctx, str(details["order_id"]), details.get("order_code")),
            amount=money(int(details.get("amount_fen") or 0)),
            status=status_words(ctx, status),
        )
        return None
    ctx.say("cancel.busy", order=type_words(ctx, order_type), status=status_words(ctx, status))
    return None


def _may_withdraw(answers: Mapping[str, Any]) -> bool:
    return bool(answers.get("busy_order_id"))


async def withdraw_options(ctx: Ctx) -> Sequence[Option]:
    key = f"cancel.withdraw_label.{ctx.get('busy_order_type')}"
    label = ctx.t(key) if ctx.t.catalog.has(key) else ctx.t("cancel.withdraw_label.other")
    return [Option("withdraw", label), Option("keep", ctx.t("cancel.keep_seal"))]


def _withdraw_params(ctx: Ctx) -> dict[str, Any]:
    return {
        "code": order_number(ctx, str(ctx.get("busy_order_id"))),
        "order": type_words(ctx, str(ctx.get("busy_order_type", ""))),
        "amount": money(int(ctx.get("busy_amount_fen") or 0)),
    }


async def withdraw_then_cancel(ctx: Ctx) -> Outcome | None:
    """Confirmed: withdraw the other order (refunded), then cancel the seal with the same code."""
    if ctx.get("withdraw_offer") != "withdraw" or ctx.get("withdraw_sure") != "yes":
        ctx.say("cancel.busy_kept")
        return Finish()
    order_id = str(ctx.get("busy_order_id"))
    try:
        await services(ctx).platform.orders.withdraw(token(ctx), order_id)
    except PlatformClientError as exc:
        if exc.code in ("not_withdrawable", "invalid_transition"):
            # staff started on it meanwhile: it cannot be taken back any more
            ctx.say("cancel.withdraw_too_late", code=order_number(ctx, order_id))
            return Finish()
        return await on_platform_error(ctx, exc)
    ctx.say("cancel.withdrawn", **_withdraw_params(ctx))
    for name in ("busy_order_id", "busy_order_type", "busy_amount_fen"):
        ctx.set(name, None)
    return await confirm_cancellation(ctx)


async def withdraw(ctx: Ctx) -> Outcome | None:
    """Leaving before the code is confirmed: the draft cancellation is dropped, the seal stays."""
    if ctx.get("order_id") and "confirm" not in ctx.get("_done", []):
        # a draft left behind blocks nothing: failing to drop it is no reason to stop the user
        with contextlib.suppress(PlatformClientError):
            await services(ctx).platform.orders.cancel(token(ctx), ctx.get("order_id"))
    return None


CANCEL = Flow(
    name="cancel_seal",
    version=1,
    next_steps=AFTER_SEAL_PROCESS,
    title="cancel.title",
    help="cancel.help",
    requires_login=True,
    on_resume=resume_order_run,
    on_cancel=withdraw,
    steps=(
        *seal_steps("cancel_seal"),
        Action("describe", run=describe, depends_on=("seal_id",)),
        *confirm_steps(
            prompt="cancel.ask_confirm",
            label="cancel.confirm_label",
            yes="cancel.yes",
            no="cancel.no",
            kept="cancel.kept",
            prompt_params=lambda ctx: {"seal": ctx.get("seal_text", "")},
        ),
        Action("order", run=make_order),
        captcha_step(),
        code_sender("cancel_seal", sent="cancel.code_sent", refused=_send_refused),
        code_field(prompt="cancel.ask_code", label="cancel.code"),
        Action("confirm", run=confirm_cancellation, depends_on=("code",)),
        Choice(
            "withdraw_offer",
            prompt="cancel.ask_withdraw",
            label="cancel.withdraw_offer_label",
            options=withdraw_options,
            when=_may_withdraw,
            depends_on=("confirm",),
        ),
        Choice(
            "withdraw_sure",
            prompt="cancel.ask_withdraw_sure",
            label="cancel.withdraw_sure_label",
            options=(Option("yes", "cancel.withdraw_yes"), Option("no", "cancel.withdraw_no")),
            prompt_params=_withdraw_params,
            when=lambda a: _may_withdraw(a) and a.get("withdraw_offer") == "withdraw",
            depends_on=("withdraw_offer",),
        ),
        Action("withdrawn", run=withdraw_then_cancel, when=_may_withdraw, depends_on=("withdraw_offer",)),
    ),
)

FLOWS = (CANCEL,)

INTENTS = {
    "cancel_seal": (
        "注销",
        "注销印章",
        "我要注销",
        "印章注销",
        "作废印章",
        "cancel my seal",
        "cancel the seal",
        "revoke my seal",
        "seal cancellation",
        "deactivate my seal",
    ),
}
