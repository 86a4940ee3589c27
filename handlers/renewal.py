"""续期 (manual 1.3.2): only within 60 days of expiry; years, pay, then the UKey step.

A seal further from expiry is not refused with an error: the user hears the date renewal opens.
The platform checks the window again when the order is made (the date may have moved on).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, Outcome, Summary
from bot.engine.messages import Option
from handlers.my_seals import (
    chosen_seal,
    go_to_ukey,
    local_date,
    on_platform_error,
    order_action,
    seal_steps,
    yuan,
)
from handlers.payment import is_paid, payment_steps
from handlers.services import services
from platform_client.errors import PlatformClientError


async def check_window(ctx: Ctx) -> Outcome | None:
    try:
        seal = await chosen_seal(ctx)
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    if not seal.renewable_now:
        ctx.say(
            "renewal.too_early_with_expiry",
            expires=local_date(seal.valid_to),
            date=local_date(seal.renewal_opens_at),
        )
        return Finish()
    ctx.set("seal_kind", seal.kind)
    ctx.set("seal_valid_to", seal.valid_to.isoformat() if seal.valid_to else None)
    ctx.say("renewal.window_open", expires=local_date(seal.valid_to))
    return None


def renewed_until(valid_to: datetime | None, now: datetime, years: int) -> datetime:
    """The end date the platform will give (seal_platform.validity.renewed_valid_to): the
    years are added to the later of the current end date and today, so the option and the
    confirmation can say it before payment."""
    start = max(valid_to, now) if valid_to is not None else now
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)


async def year_options(ctx: Ctx) -> Sequence[Option]:
    prices = await services(ctx).platform.orders.prices()
    per_year = prices.per_year_fen.get(ctx.get("seal_kind", "enterprise"), 0)
    stored = ctx.get("seal_valid_to")
    valid_to = datetime.fromisoformat(stored) if stored else None
    return [
        Option(
            str(n),
            ctx.t(
                "renewal.years_option",
                years=n,
                amount=yuan(per_year * n),
                until=local_date(renewed_until(valid_to, ctx.now, n)),
            ),
        )
        for n in prices.validity_years_options
    ]


def renewal_body(ctx: Ctx) -> dict[str, Any]:
    return {"type": "renewal", "seal_id": ctx.get("seal_id"), "years": int(ctx.get("years"))}


RENEWAL = Flow(
    name="renew",
    version=1,
    title="renewal.title",
    help="renewal.help",
    requires_login=True,
    steps=(
        *seal_steps("renew"),
        Action("window", run=check_window, depends_on=("seal_id",)),
        Choice("years", prompt="renewal.ask_years", label="renewal.years", options=year_options),
        Summary("confirm", title="renewal.confirm"),
        order_action("order", renewal_body, depends_on=("seal_id", "years")),
        *payment_steps("pay"),
        Action("ukey", run=go_to_ukey, when=is_paid),
    ),
)

FLOWS = (RENEWAL,)

INTENTS = {
    "renew": (
        "续期",
        "印章续期",
        "我要续期",
        "证书续期",
        "延期",
        "续费印章",
        "renew",
        "renew my seal",
        "renewal",
        "extend the certificate",
        "extend my seal",
    ),
}
