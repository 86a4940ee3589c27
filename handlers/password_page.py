"""The chat side of the secure password page: a Wait that sends a single-use link and
continues when the page reports back.

Passwords are never asked in a chat. The step sends a button with a link (valid
``PAGE_TTL``, bound to this conversation by the nonce kept in the run's answers); the page
(``bot.secure_page``) calls the platform and delivers one of the events below. A new link
can be asked for at any time; the old one stops working at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from bot.engine.context import Ctx
from bot.engine.flow import Condition, GoTo, Outcome, Stay, Wait
from bot.engine.messages import ExternalEvent, Option
from handlers.services import services

PAGE_TTL = timedelta(minutes=10)
NONCE = "_page.nonce"  # the nonce of the one link that is valid now
CLAIM = "_page.claim"  # sha256 of the browser cookie that first submitted the page
PURPOSE = "_page.purpose"

DONE = "secure_page.done"  # data: nonce, purpose, account_id, token, realname
CODE_REJECTED = "secure_page.code_rejected"  # data: nonce, code (the platform's error code)
REFUSED = "secure_page.refused"  # data: nonce, reason (expired, other_browser)
REGISTERED = "secure_page.phone_registered"  # data: nonce (registration of a known phone)
EVENTS = frozenset({DONE, CODE_REJECTED, REFUSED, REGISTERED})

OnDone = Callable[[Ctx, ExternalEvent], Awaitable[Outcome | None]]


def issue_link(ctx: Ctx, purpose: str) -> None:
    """A new link (the previous one stops working) and the button that opens it."""
    make = services(ctx).password_page
    if make is None:
        raise RuntimeError("the password page is not wired (HandlerServices.password_page)")
    nonce = secrets.token_urlsafe(16)
    expires = ctx.now + PAGE_TTL
    ctx.set(NONCE, nonce)
    ctx.set(PURPOSE, purpose)
    ctx.answers.pop(CLAIM, None)
    ctx.wait_until(expires)
    ctx.say(f"accounts.page_intro_{purpose}", minutes=int(PAGE_TTL.total_seconds() // 60))
    ctx.link(make(ctx.key, purpose, nonce, expires), ctx.t(f"accounts.page_button_{purpose}"))


def password_page(
    name: str,
    purpose: str,
    *,
    on_done: OnDone,
    when: Condition | None = None,
    depends_on: tuple[str, ...] = (),
) -> Wait:
    """The Wait of one password page; ``on_done`` binds the session and says what happened."""

    async def on_enter(ctx: Ctx) -> Outcome | None:
        issue_link(ctx, purpose)
        return None

    def accepts(ctx: Ctx, event: ExternalEvent) -> bool:
        return event.type in EVENTS and event.data.get("nonce") == ctx.get(NONCE)

    async def on_event(ctx: Ctx, event: ExternalEvent) -> Outcome | None:
        if event.type == DONE:
            return await on_done(ctx, event)
        if event.type == REFUSED:
            ctx.say(f"accounts.page_refused_{event.data.get('reason', 'expired')}")
            return Stay(reprompt=True)
        # The code typed in the chat was refused when the page used it, or the phone turned
        # out to be registered: back to the chat's own steps; a later visit sends a new link.
        ctx.answers.pop(f"_entered.{name}", None)
        ctx.answers.pop(NONCE, None)
        if event.type == REGISTERED:
            return GoTo("phone", error="accounts.page_phone_registered")
        code = str(event.data.get("code", ""))
        if code == "sms_code_wrong":
            return GoTo("code", error="accounts.page_code_wrong")
        return GoTo("send_code", error="accounts.page_code_expired")

    async def options(ctx: Ctx) -> Sequence[Option]:
        return [Option("new_link", ctx.t("accounts.page_new_link"))]

    async def on_option(ctx: Ctx, choice: str) -> Outcome | None:
        if choice == "new_link":
            issue_link(ctx, purpose)
        return None  # keep waiting (the status and its button again)

    async def on_timeout(ctx: Ctx) -> Outcome | None:
        ctx.answers.pop(NONCE, None)  # the page refuses it anyway; now the chat knows too
        ctx.say("accounts.page_refused_expired")
        return Stay(reprompt=True)

    return Wait(
        name,
        sensitive=True,  # a password typed here by mistake is never stored
        status="accounts.page_waiting",
        accepts=accepts,
        on_enter=on_enter,
        on_event=on_event,
        options=options,
        on_option=on_option,
        timeout=PAGE_TTL,
        on_timeout=on_timeout,
        when=when,
        depends_on=depends_on,
    )
