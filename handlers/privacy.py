"""The user's privacy settings from the chat: where account news is pushed.

Account news (payment received, review result, shipping, invoice) goes to every chat where the
account is logged in; a user who shares a device may prefer only the chat used last.
"""

from __future__ import annotations

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Flow, Outcome
from bot.engine.messages import Option
from bot.engine.runtime import PUSH_LATEST_ONLY
from handlers.menu import MenuItem


async def apply_push_setting(ctx: Ctx) -> Outcome | None:
    latest_only = ctx.get("where") == "latest"
    if latest_only:
        ctx.memory[PUSH_LATEST_ONLY] = True
    else:
        ctx.memory.pop(PUSH_LATEST_ONLY, None)
    ctx.say("privacy.push_latest_set" if latest_only else "privacy.push_all_set")
    return None


PUSH_SETTINGS = Flow(
    name="push_settings",
    version=1,
    title="privacy.push_title",
    help="privacy.push_help",
    requires_login=True,
    steps=(
        Choice(
            "where",
            prompt="privacy.ask_push_where",
            label="privacy.push_where",
            options=(Option("all", "privacy.push_all"), Option("latest", "privacy.push_latest")),
        ),
        Action("apply", run=apply_push_setting),
    ),
)

FLOWS = (PUSH_SETTINGS,)

MENU = (MenuItem("push_settings", "privacy.push_title", visible=lambda ctx: ctx.logged_in, order=85),)

INTENTS = {
    "push_settings": ("推送设置", "通知设置", "消息推送", "push settings", "notification settings"),
}
