"""补办 (manual 1.3.4): a new UKey for a lost or broken one; mailing address, pay, then staff
produce and ship it as for a new seal (the order's status pushes tell the user the rest)."""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import Action, Field, Finish, Flow, Invalid, Outcome, Summary
from handlers.apply_common import ADDRESS_FIELDS, mailing_address, parse_region, parse_street, show_region
from handlers.checks import platform_check
from handlers.my_seals import order_action, resume_order_run, seal_steps
from handlers.next_steps import AFTER_SEAL_PROCESS
from handlers.payment import is_paid, payment_steps


def parse_recipient(text: str) -> str:
    name = " ".join(text.split())
    if not 2 <= len(name) <= 30:
        raise Invalid("reissue.recipient_invalid")
    return name


def reissue_body(ctx: Ctx) -> dict[str, Any]:
    return {
        "type": "reissue",
        "seal_id": ctx.get("seal_id"),
        "mailing_address": mailing_address(ctx),
    }


async def after_payment(ctx: Ctx) -> Outcome | None:
    ctx.say("reissue.in_production")
    return Finish()


REISSUE = Flow(
    name="reissue",
    version=1,
    next_steps=AFTER_SEAL_PROCESS,
    title="reissue.title",
    help="reissue.help",
    requires_login=True,
    on_resume=resume_order_run,
    steps=(
        *seal_steps("reissue"),
        Field("recipient", prompt="reissue.ask_recipient", label="reissue.recipient", parse=parse_recipient),
        Field(
            "recipient_phone",
            prompt="reissue.ask_phone",
            label="reissue.phone",
            check=platform_check("mobile", "reissue.phone_invalid"),
            sensitive=True,
            max_length=20,
        ),
        Field(
            "region",
            prompt="reissue.ask_region",
            label="reissue.region",
            parse=parse_region,
            display=show_region,
        ),
        Field("street", prompt="reissue.ask_street", label="reissue.street", parse=parse_street),
        Summary("confirm", title="reissue.confirm", groups=(("reissue.group_mailing", ADDRESS_FIELDS),)),
        order_action("order", reissue_body),
        *payment_steps("pay"),
        Action("produce", run=after_payment, when=is_paid),
    ),
)

FLOWS = (REISSUE,)

INTENTS = {
    "reissue": (
        "补办",
        "印章补办",
        "我要补办",
        "ukey丢了",
        "ukey坏了",
        "重新办一个ukey",
        "reissue",
        "reissue my seal",
        "lost my ukey",
        "replace my key",
        "new ukey",
    ),
}
