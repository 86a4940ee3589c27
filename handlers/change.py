"""变更 (manual 1.3.3): what changes, the new licence and impression form, pay, review, UKey step.

The draft order is made as soon as the user says what changes, so the pre-filled 印模采集表
can be sent to print, stamp and scan; the scans are attached and the order submitted after the
summary. Staff review it after payment; an approval leads straight to the UKey step.
"""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import (
    Action,
    Choice,
    Field,
    Finish,
    Flow,
    Invalid,
    Next,
    Outcome,
    Stay,
    Summary,
    Upload,
    Wait,
)
from bot.engine.messages import ExternalEvent, Option
from handlers.my_seals import (
    current_order,
    event_for_order,
    go_to_ukey,
    on_platform_error,
    order_status_text,
    resume_order_run,
    seal_steps,
)
from handlers.next_steps import AFTER_SEAL_PROCESS
from handlers.payment import is_paid, payment_steps
from handlers.services import services, token
from platform_client.documents import UploadKind
from platform_client.errors import PlatformClientError

ROLE_KINDS: dict[str, UploadKind] = {
    "business_licence": "business_licence",
    "impression_form": "impression_form",
}


def parse_name(text: str) -> str:
    name = " ".join(text.split())
    if not 2 <= len(name) <= 60:
        raise Invalid("change.name_invalid")
    return name


def change_details(ctx: Ctx) -> dict[str, Any]:
    return {ctx.get("what"): ctx.get("new_value")}


async def make_draft(ctx: Ctx) -> Outcome | None:
    """A draft with what changes; an edited answer updates the same draft."""
    orders = services(ctx).platform.orders
    try:
        if ctx.get("order_id"):
            order = await orders.update(token(ctx), ctx.get("order_id"), {"change": change_details(ctx)})
        else:
            order = await orders.create(
                token(ctx),
                {"type": "change", "seal_id": ctx.get("seal_id"), "change": change_details(ctx)},
                idempotency_key=ctx.idempotency_key(f"change:{ctx.get('seal_id')}"),
            )
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    ctx.set("order_id", order.id)
    ctx.set("amount_fen", order.amount_fen)
    return None


async def send_form(ctx: Ctx) -> Outcome | None:
    try:
        pdf = await services(ctx).platform.documents.impression_form(token(ctx), ctx.get("order_id"))
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    file = await ctx.media.put(pdf, filename="印模采集表.pdf", content_type="application/pdf")
    ctx.document(file, ctx.t("change.form_caption"))
    return None


async def attach_and_submit(ctx: Ctx) -> Outcome | None:
    platform = services(ctx).platform
    try:
        documents: dict[str, str] = {}
        for role, kind in ROLE_KINDS.items():
            file = ctx.get(role)[0]
            content = await ctx.media.get(file["media_id"])
            uploaded = await platform.documents.upload(
                token(ctx), kind, content, filename=file["filename"], content_type=file["content_type"]
            )
            documents[role] = uploaded.id
        await platform.orders.update(token(ctx), ctx.get("order_id"), {"documents": documents})
        order = await platform.orders.submit(token(ctx), ctx.get("order_id"))
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    ctx.set("amount_fen", order.amount_fen)
    return None


async def review_event(ctx: Ctx, event: ExternalEvent) -> Outcome | None:
    if event.type == "order.rejected":
        ctx.say(
            "change.rejected",
            reason=event.data.get("reason") or "-",
            options=[ctx.option("@human", "engine.nav_human"), ctx.option("@go:my_seals", "seals.title")],
        )
        return Finish(show_home=False)
    ctx.say("change.approved")
    return Next()


async def review_message(ctx: Ctx, _text: str) -> Outcome | None:
    try:
        order = await current_order(ctx)
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    if order.status in ("approved", "awaiting_ukey"):
        ctx.say("change.approved")
        return Next()
    if order.status == "rejected":
        ctx.say("change.rejected", reason=order.reject_reason or "-")
        return Finish()
    ctx.say_text(order_status_text(ctx, order))
    return Stay()


CHANGE = Flow(
    name="change",
    version=1,
    next_steps=AFTER_SEAL_PROCESS,
    title="change.title",
    help="change.help",
    requires_login=True,
    on_resume=resume_order_run,
    steps=(
        *seal_steps("change"),
        Choice(
            "what",
            prompt="change.ask_what",
            label="change.what",
            options=(
                Option("company_name", "change.company_name"),
                Option("legal_rep_name", "change.legal_rep_name"),
            ),
        ),
        Field(
            "new_value",
            prompt="change.ask_new_value",
            label="change.new_value",
            parse=parse_name,
            max_length=60,
        ),
        Action("draft", run=make_draft, depends_on=("what", "new_value")),
        Action("form", run=send_form, depends_on=("draft",)),
        Upload("business_licence", prompt="change.ask_licence", label="change.licence"),
        Upload("impression_form", prompt="change.ask_form", label="change.form"),
        Summary("confirm", title="change.confirm"),
        Action("submit", run=attach_and_submit),
        *payment_steps("pay"),
        Wait(
            "review",
            status="change.under_review",
            accepts=lambda ctx, e: event_for_order(ctx, e, "order.approved", "order.rejected"),
            on_event=review_event,
            on_message=review_message,
            when=is_paid,
        ),
        Action("ukey", run=go_to_ukey, when=is_paid),
    ),
)

FLOWS = (CHANGE,)

INTENTS = {
    "change": (
        "变更",
        "印章变更",
        "我要变更",
        "变更印章",
        "公司改名",
        "更换法人",
        "change my seal",
        "change the seal",
        "seal change",
        "company renamed",
        "update my seal",
    ),
}
