"""注销 (manual 1.3.4, second of that number): what cancelling means, an SMS code to the
account's phone, the code typed in the chat, done. Nothing is paid.

The platform keeps the rules of the code (5 minutes, a few tries, only the newest counts); the
flow explains each refusal and sends a new code when the old one cannot be used any more.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Field, Finish, Flow, GoTo, Outcome
from bot.engine.messages import Option
from handlers.accounts import (
    ask_captcha,
    captcha_step,
    masked_phone,
    parse_code,
    sms_client_ip,
    sms_identity,
)
from handlers.my_seals import (
    chosen_seal,
    local_date,
    on_platform_error,
    resume_order_run,
    seal_line,
    seal_steps,
)
from handlers.next_steps import AFTER_SEAL_PROCESS
from handlers.services import services, token
from platform_client.errors import PlatformClientError, RateLimited

RESEND = {"sms_code_expired", "sms_code_exhausted", "sms_code_not_found", "sms_code_missing"}


async def describe(ctx: Ctx) -> Outcome | None:
    try:
        seal = await chosen_seal(ctx)
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    ctx.set("seal_text", seal_line(ctx, seal))
    return None


async def confirmed(ctx: Ctx) -> Outcome | None:
    if ctx.get("go") != "yes":
        ctx.say("cancel.kept")
        return Finish()
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


async def send_code(ctx: Ctx) -> Outcome | None:
    session = ctx.session
    assert session is not None
    captcha_token = ctx.get("captcha_token") or None
    try:
        await services(ctx).platform.accounts.send_sms_code(
            session.phone,
            "cancel_seal",
            token=token(ctx),
            identity=sms_identity(ctx),
            client_ip=sms_client_ip(ctx),
            captcha_token=captcha_token,
            captcha_answer=(ctx.get("captcha") or None) if captcha_token else None,
        )
    except PlatformClientError as exc:
        if exc.code in ("sms_captcha_required", "sms_captcha_wrong"):
            return await ask_captcha(ctx, exc)
        ctx.set("captcha_token", None)
        return await _code_refused(ctx, exc)
    ctx.set("captcha_token", None)
    ctx.say("cancel.code_sent", phone=masked_phone(session.phone))
    dev_page = services(ctx).sms_dev_page
    if dev_page:
        ctx.say("accounts.code_dev_page", url=dev_page)
    return None


async def _code_refused(ctx: Ctx, exc: PlatformClientError) -> Outcome | None:
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
        if exc.code == "sms_code_wrong":
            ctx.say("cancel.code_wrong", attempts_left=exc.details.get("attempts_left", "-"))
            return GoTo("code")
        if exc.code in RESEND:
            ctx.say("cancel.code_expired" if exc.code == "sms_code_expired" else "cancel.code_used_up")
            return GoTo("send_code")
        if exc.code == "seal_busy":
            # the code stays valid: once that order is finished or withdrawn, the user can return
            details = exc.details or {}
            ctx.say(
                "cancel.busy",
                order=ctx.t(f"orders.type.{details.get('order_type', '')}")
                if ctx.t.catalog.has(f"orders.type.{details.get('order_type', '')}")
                else details.get("order_type", ""),
                status=ctx.t(f"orders.status.{details.get('status', '')}")
                if ctx.t.catalog.has(f"orders.status.{details.get('status', '')}")
                else details.get("status", ""),
            )
            return None
        return await on_platform_error(ctx, exc)
    at = order.result.get("seal_cancelled_at")
    ctx.say(
        "cancel.done",
        seal=ctx.get("seal_text", ""),
        date=local_date(datetime.fromisoformat(at)) if at else local_date(ctx.now),
    )
    return None


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
        Choice(
            "go",
            prompt="cancel.ask_confirm",
            label="cancel.confirm_label",
            options=(Option("yes", "cancel.yes"), Option("no", "cancel.no")),
            prompt_params=lambda ctx: {"seal": ctx.get("seal_text", "")},
        ),
        Action("confirmed", run=confirmed, depends_on=("go",)),
        Action("order", run=make_order),
        captcha_step(),
        Action("send_code", run=send_code, depends_on=("captcha",)),
        Field(
            "code", prompt="cancel.ask_code", label="cancel.code", parse=parse_code, depends_on=("send_code",)
        ),
        Action("confirm", run=confirm_cancellation, depends_on=("code",)),
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
