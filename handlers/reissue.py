"""补办 (manual 1.3.4): a new UKey for a lost or broken one; mailing address, pay, then staff
produce and ship it as for a new seal (the order's status pushes tell the user the rest)."""

from __future__ import annotations

import re
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import Action, Field, Finish, Flow, Invalid, Outcome, Summary
from handlers.checks import platform_check
from handlers.my_seals import order_action, payment_steps, seal_steps


def parse_region(text: str) -> dict[str, str]:
    """"广东省 广州市 天河区" (or with commas): province, city and an optional district."""
    parts = [p for p in re.split(r"[\s,，、/]+", text.strip()) if p]
    if not 2 <= len(parts) <= 3 or any(len(p) < 2 for p in parts):
        raise Invalid("reissue.region_invalid")
    return {"province": parts[0], "city": parts[1], "district": parts[2] if len(parts) == 3 else ""}


def show_region(value: Any) -> str:
    return " ".join(v for v in (value["province"], value["city"], value["district"]) if v)


def parse_recipient(text: str) -> str:
    name = " ".join(text.split())
    if not 2 <= len(name) <= 30:
        raise Invalid("reissue.recipient_invalid")
    return name


def parse_street(text: str) -> str:
    street = " ".join(text.split())
    if len(street) < 4:
        raise Invalid("reissue.address_invalid")
    return street


def reissue_body(ctx: Ctx) -> dict[str, Any]:
    return {
        "type": "reissue",
        "seal_id": ctx.get("seal_id"),
        "mailing_address": {
            "recipient": ctx.get("recipient"),
            "phone": ctx.get("recipient_phone"),
            **ctx.get("region"),
            "address": ctx.get("street"),
        },
    }


async def after_payment(ctx: Ctx) -> Outcome | None:
    ctx.say("reissue.in_production")
    return Finish()


REISSUE = Flow(
    name="reissue",
    version=1,
    title="reissue.title",
    help="reissue.help",
    requires_login=True,
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
        Field("region", prompt="reissue.ask_region", label="reissue.region", parse=parse_region, display=show_region),
        Field("street", prompt="reissue.ask_street", label="reissue.street", parse=parse_street),
        Summary("confirm", title="reissue.confirm"),
        order_action("order", reissue_body),
        *payment_steps(),
        Action("produce", run=after_payment),
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
