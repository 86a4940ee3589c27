"""Steps shared by the processes the user confirms with an SMS code to the account's phone
(注销印章 in ``handlers.cancel_seal``, 导出我的信息 and 注销账号 in ``handlers.my_data``): the
确认/保留 question asked first, the code sent, the code typed, and what a refused code means.

Each process keeps its own words: the steps take its message keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Field, Finish, GoTo, Outcome
from bot.engine.messages import Option
from handlers.accounts import SendRefused, parse_code, send_code_to
from handlers.services import token
from platform_client.errors import PlatformClientError
from platform_client.models import SmsPurpose

# A code that can no longer be used: a new one is sent.
RESEND = {"sms_code_expired", "sms_code_exhausted", "sms_code_not_found", "sms_code_missing"}


def confirm_steps(
    *,
    prompt: str,
    label: str,
    yes: str,
    no: str,
    kept: str,
    prompt_params: Callable[[Ctx], Mapping[str, Any]],
) -> tuple[Choice, Action]:
    """确认/保留: the ``go`` question, and the step that ends the process with ``kept`` unless the
    answer was yes."""

    async def confirmed(ctx: Ctx) -> Outcome | None:
        if ctx.get("go") != "yes":
            ctx.say(kept)
            return Finish()
        return None

    return (
        Choice(
            "go",
            prompt=prompt,
            label=label,
            options=(Option("yes", yes), Option("no", no)),
            prompt_params=prompt_params,
        ),
        Action("confirmed", run=confirmed, depends_on=("go",)),
    )


def code_sender(purpose: SmsPurpose, *, sent: str, refused: SendRefused) -> Action:
    """``send_code``: a code of ``purpose`` to the account's phone (``sent`` says where); the
    platform's captcha is asked for when it wants one, any other refusal is ``refused``'s."""

    async def send_code(ctx: Ctx) -> Outcome | None:
        session = ctx.session
        assert session is not None
        return await send_code_to(
            ctx, session.phone, purpose, sent=sent, refused=refused, account_token=token(ctx)
        )

    return Action("send_code", run=send_code, depends_on=("captcha",))


def code_field(*, prompt: str, label: str) -> Field:
    """``code``: the code typed in the chat, asked once it was sent; sensitive, so it is never
    stored in clear (as ``handlers.accounts.code_field``)."""
    return Field(
        "code", prompt=prompt, label=label, parse=parse_code, sensitive=True, depends_on=("send_code",)
    )


def code_refused(
    ctx: Ctx, exc: PlatformClientError, *, wrong: str, expired: str, used_up: str | None = None
) -> Outcome | None:
    """A wrong code is asked again (``wrong``); one that can no longer be used is replaced by a
    new one (``expired``, or ``used_up`` when it did not simply run out). ``None``: not a
    refusal of the code."""
    if exc.code == "sms_code_wrong":
        ctx.say(wrong, attempts_left=exc.details.get("attempts_left", "-"))
        return GoTo("code")
    if exc.code in RESEND:
        ctx.say(expired if used_up is None or exc.code == "sms_code_expired" else used_up)
        return GoTo("send_code")
    return None
