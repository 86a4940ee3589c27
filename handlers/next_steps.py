"""What to offer when a process ends: the two or three steps that make sense next, instead of
the whole menu (``Flow.next_steps``; the engine adds a "main menu" button)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.engine.context import Ctx
from bot.engine.messages import Option

NextSteps = Callable[[Ctx], Sequence[Option]]


def offer(*items: tuple[str, str]) -> NextSteps:
    """(flow, catalog key of its title) pairs, as buttons that start those processes."""

    def options(ctx: Ctx) -> Sequence[Option]:
        return [ctx.option(f"@go:{flow}", title) for flow, title in items]

    return options


def after_login(ctx: Ctx) -> Sequence[Option]:
    """A verified applicant goes on to a seal; anyone else to the real-name check first."""
    if ctx.session is not None and ctx.session.realname_verified:
        return offer(
            ("apply_enterprise", "apply.title_enterprise"),
            ("my_seals", "seals.title"),
            ("my_orders", "orders.title"),
        )(ctx)
    return offer(("realname", "accounts.realname_title"), ("my_seals", "seals.title"))(ctx)


AFTER_LOGOUT = offer(("login", "accounts.login_title"))
AFTER_REALNAME = offer(
    ("apply_enterprise", "apply.title_enterprise"), ("apply_personal", "apply.title_personal")
)
AFTER_ORDER = offer(("my_orders", "orders.title"), ("invoice", "invoice.title"))
AFTER_SEAL_PROCESS = offer(("my_orders", "orders.title"), ("my_seals", "seals.title"))
AFTER_INVOICE = offer(("my_orders", "orders.title"), ("my_seals", "seals.title"))
