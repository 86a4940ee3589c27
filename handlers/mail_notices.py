"""订单邮件通知 ("order e-mail notices"): the account opts in to, or out of, e-mails on its
orders' main status changes (paid, approved or not, seal made, shipped, invoice issued).

Sits beside 提醒方式 in the settings part of the menu. The choice is the platform's
(``PUT /v1/me/notices``): it mails after each change, in the language of this chat at the time
of the choice. Without SMTP on the platform the flow says so and offers nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Field, Finish, Flow, Outcome
from bot.engine.messages import Option
from handlers.invoice import REMEMBERED as INVOICE_DETAILS
from handlers.invoice import parse_email
from handlers.menu import MenuItem
from handlers.order_words import session_lost
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.errors import NotAuthenticated, PlatformClientError
from platform_client.notices import NoticeSettings


def _status(ctx: Ctx, settings: NoticeSettings) -> str:
    if settings.enabled:
        return ctx.t("mail_notices.status_on", email=settings.email)
    return ctx.t("mail_notices.status_off")


async def load(ctx: Ctx) -> Outcome | None:
    try:
        current = await services(ctx).platform.notices.get(token(ctx))
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    if not current.available:
        ctx.say("mail_notices.unavailable")
        return Finish()
    ctx.set("_status", _status(ctx, current))
    ctx.set("_email", current.email)
    ctx.set("_enabled", "on" if current.enabled else "off")
    return None


async def email_suggestions(ctx: Ctx) -> Sequence[Option]:
    """The address given before, and the one invoices were last mailed to."""
    found: list[str] = []
    invoice_details = ctx.memory.get(INVOICE_DETAILS)
    for email in (
        ctx.get("_email"),
        invoice_details.get("email") if isinstance(invoice_details, dict) else None,
    ):
        if email and str(email) not in found:
            found.append(str(email))
    return [Option(email, email) for email in found]


async def apply(ctx: Ctx) -> Outcome | None:
    wanted_on = ctx.get("choice") == "on"
    email = str(ctx.get("email") or "") if wanted_on else None
    same_address = not wanted_on or email == ctx.get("_email")
    if ctx.get("_enabled") == ctx.get("choice") and same_address:
        ctx.say("mail_notices.unchanged")
        return Finish()
    try:
        chosen = await services(ctx).platform.notices.choose(
            token(ctx), enabled=wanted_on, email=email, language=ctx.locale
        )
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    if chosen.enabled:
        ctx.say("mail_notices.now_on", email=chosen.email)
    else:
        ctx.say("mail_notices.now_off")
    return None


NOTICES = Flow(
    name="mail_notices",
    version=1,
    title="mail_notices.title",
    help="mail_notices.help",
    steps=(
        Action("load", run=load),
        Choice(
            "choice",
            prompt="mail_notices.ask",
            label="mail_notices.choice",
            options=(Option("on", "mail_notices.on"), Option("off", "mail_notices.off")),
            prompt_params=lambda ctx: {"status": str(ctx.get("_status", ""))},
        ),
        Field(
            "email",
            prompt="mail_notices.ask_email",
            label="mail_notices.email",
            parse=parse_email,
            suggestions=email_suggestions,
            max_length=200,
            when=lambda answers: answers.get("choice") == "on",
            depends_on=("choice",),
        ),
        Action("apply", run=apply, depends_on=("choice", "email")),
    ),
)

FLOWS = (NOTICES,)

MENU = (MenuItem("mail_notices", "mail_notices.title", visible=lambda ctx: ctx.logged_in, order=82),)

INTENTS = {
    "mail_notices": (
        "邮件通知",
        "订单邮件通知",
        "订单通知",
        "email notices",
        "order emails",
        "email me updates",
    ),
}
