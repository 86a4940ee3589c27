"""Field checks that ask the platform, so the bot never keeps a second copy of its rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import Invalid
from handlers.services import services
from platform_client.checks import CheckKind
from platform_client.errors import InvalidInput, PlatformClientError


def platform_check(kind: CheckKind, invalid_key: str) -> Callable[[Ctx, Any], Awaitable[str]]:
    """A ``Field.check`` that normalises the answer through the platform's validator.

    The normalised value replaces what the user typed (``+86 138-0013-8000`` is stored as
    ``13800138000``); a refusal names the fault in the user's language, with an example.
    """

    async def check(ctx: Ctx, value: Any) -> str:
        try:
            return await services(ctx).platform.checks.check(kind, str(value))
        except InvalidInput as exc:
            specific = f"checks.{exc.code}"
            raise Invalid(specific if ctx.t.catalog.has(specific) else invalid_key) from exc
        except PlatformClientError as exc:
            raise Invalid("errors.unavailable") from exc

    return check
