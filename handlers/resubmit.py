"""Fix and resubmit a rejected order (审核未通过 -> 补正材料 -> 重新提交, manual 1.2.7).

Reached from the rejection push or My orders as ``@go:resubmit:<order id>``: the reviewer's
reason is repeated, the applicant picks which scan to replace (as often as needed), uploads the
corrected one, and the order goes back to review with ``POST /v1/orders/{id}/resubmit``; there
is nothing more to pay.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.engine.context import Ctx
from bot.engine.flow import Action, Answers, Choice, Finish, Flow, GoTo, Outcome, Upload
from bot.engine.messages import FileRef, Option
from handlers.apply_common import ROLE_UPLOAD_KIND
from handlers.order_words import seen_order, session_lost, status_words, type_words
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.errors import NotAuthenticated, PlatformClientError

SEND_AS_IS = "send"
REPLACED = "_replaced"  # answers[REPLACED]: role -> id of the corrected document uploaded

# The catalog key naming each document role (the labels of the application's upload steps).
ROLE_LABELS = {
    "business_licence": "apply.licence",
    "id_card_front": "apply.id_front",
    "id_card_back": "apply.id_back",
    "impression_form_enterprise": "apply.form_enterprise",
    "impression_form_personal": "apply.form_personal",
    "impression_form": "apply.form_enterprise",
}


async def load(ctx: Ctx) -> Outcome | None:
    orders = services(ctx).platform.orders
    order_id = ctx.get("order_id") or ctx.get("_arg")
    try:
        if not order_id:
            # Asked in free text: the most recent rejected order is the one to fix.
            rejected = await orders.list_orders(token(ctx), status="rejected")
            if not rejected:
                ctx.say("orders.no_rejected")
                return Finish()
            order_id = rejected[0].id
        order = await orders.get(token(ctx), str(order_id))
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    if order.status != "rejected":
        ctx.say(
            "orders.resubmit_not_rejected",
            order=seen_order(ctx, order.id, order.code),
            status=status_words(ctx, order.status),
        )
        return Finish()
    ctx.set("order_id", order.id)
    ctx.set("_roles", [role for role in order.documents if role in ROLE_LABELS])
    ctx.say(
        "orders.resubmit_intro",
        order=seen_order(ctx, order.id, order.code),
        process=type_words(ctx, order.type),
        reason=order.reject_reason or ctx.t("orders.no_reason"),
    )
    return None


async def what_options(ctx: Ctx) -> Sequence[Option]:
    options = [
        Option(role, ctx.t("orders.replace", document=ctx.t(ROLE_LABELS[role])))
        for role in ctx.get("_roles", [])
    ]
    options.append(
        Option(SEND_AS_IS, ctx.t("orders.resubmit_now" if ctx.get(REPLACED) else "orders.resubmit_as_is"))
    )
    return options


def _replacing(answers: Answers) -> bool:
    return answers.get("what") not in (None, SEND_AS_IS)


async def store_replacement(ctx: Ctx) -> Outcome | None:
    role = str(ctx.get("what"))
    file = FileRef.from_dict(ctx.get("file")[0])
    data = await ctx.media.get(file.media_id)
    try:
        document = await services(ctx).platform.documents.upload(
            token(ctx),
            ROLE_UPLOAD_KIND.get(role, "impression_form"),
            data,
            filename=file.filename,
            content_type=file.content_type,
        )
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return GoTo("file")
    ctx.set(REPLACED, {**ctx.get(REPLACED, {}), role: document.id})
    ctx.say("apply.scan_received")
    return None


async def another(ctx: Ctx) -> Outcome | None:
    return GoTo("what")


async def resubmit(ctx: Ctx) -> Outcome | None:
    try:
        order = await services(ctx).platform.orders.resubmit(
            token(ctx), ctx.get("order_id"), {"documents": ctx.get(REPLACED, {})}
        )
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    ctx.say(
        "orders.resubmitted",
        order=seen_order(ctx, order.id, order.code),
        status=status_words(ctx, order.status),
    )
    return None


RESUBMIT = Flow(
    name="resubmit",
    version=1,
    title="orders.resubmit_title",
    help="orders.resubmit_help",
    requires_login=True,
    steps=(
        Action("load", run=load),
        Choice("what", prompt="orders.ask_what", label="orders.what", options=what_options),
        Upload("file", prompt="orders.ask_file", label="orders.file", when=_replacing, depends_on=("what",)),
        Action("store", run=store_replacement, when=_replacing, depends_on=("file",)),
        Choice(
            "more",
            prompt="orders.ask_more",
            label="orders.more",
            options=(Option("another", "orders.more_another"), Option("now", "orders.more_now")),
            when=_replacing,
            depends_on=("store",),
        ),
        Action(
            "another",
            run=another,
            when=lambda a: _replacing(a) and a.get("more") == "another",
            depends_on=("more",),
        ),
        Action(
            "resubmit",
            run=resubmit,
            when=lambda a: a.get("what") == SEND_AS_IS or a.get("more") == "now",
            depends_on=("what", "more"),
        ),
    ),
)

FLOWS = (RESUBMIT,)

INTENTS = {
    "resubmit": ("重新提交", "补正材料", "补交材料", "resubmit", "fix my application"),
}
