"""解锁 (manual 1.3.5): confirm, pay, then the UKey step resets the PIN to 12345678.

The issuer's SO PIN goes from the platform to the bridge on the PC; the chat never sees it,
and never asks for any PIN. Afterwards the UKey step offers a PIN change.
"""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, Outcome
from bot.engine.messages import Option
from handlers.my_seals import (
    chosen_seal,
    go_to_ukey,
    on_platform_error,
    order_action,
    resume_order_run,
    seal_steps,
    yuan,
)
from handlers.next_steps import AFTER_SEAL_PROCESS
from handlers.payment import is_paid, payment_steps
from handlers.services import services
from platform_client.errors import PlatformClientError


async def explain(ctx: Ctx) -> Outcome | None:
    try:
        seal = await chosen_seal(ctx)
        prices = await services(ctx).platform.orders.prices()
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    ctx.set("key_serial", seal.key_serial)
    ctx.set("price", yuan(prices.flat_fen.get("unlock", 0)))
    return None


async def confirmed(ctx: Ctx) -> Outcome | None:
    if ctx.get("go") != "yes":
        ctx.say("unlock.not_now")
        return Finish()
    return None


def unlock_body(ctx: Ctx) -> dict[str, Any]:
    return {"type": "unlock", "seal_id": ctx.get("seal_id")}


UNLOCK = Flow(
    name="unlock",
    version=1,
    next_steps=AFTER_SEAL_PROCESS,
    title="unlock.title",
    help="unlock.help",
    requires_login=True,
    on_resume=resume_order_run,
    steps=(
        *seal_steps("unlock"),
        Action("explain", run=explain, depends_on=("seal_id",)),
        Choice(
            "go",
            prompt="unlock.ask_confirm",
            label="unlock.confirm",
            options=(Option("yes", "unlock.yes"), Option("no", "unlock.no")),
            prompt_params=lambda ctx: {
                "price": ctx.get("price", "-"),
                "serial": ctx.get("key_serial") or "-",
            },
        ),
        Action("confirmed", run=confirmed, depends_on=("go",)),
        order_action("order", unlock_body),
        *payment_steps("pay"),
        Action("ukey", run=go_to_ukey, when=is_paid),
    ),
)

FLOWS = (UNLOCK,)

INTENTS = {
    "unlock": (
        "解锁",
        "印章解锁",
        "ukey锁了",
        "ukey被锁",
        "密码锁了",
        "忘记ukey密码",
        "unlock",
        "unlock my key",
        "unlock my ukey",
        "pin locked",
        "forgot my pin",
    ),
}
