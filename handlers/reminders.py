"""Expiry-reminder settings by chat: 提醒设置, 关闭提醒 / 开启提醒 ("reminders off" / "on").

The choice is kept in this conversation's memory with the time it was made; the scheduler reads
the most recent choice across all chat identities of the account (``scheduler.reminders``
spells the same memory names: handlers do not import the scheduler).
"""

from __future__ import annotations

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, Outcome
from bot.engine.messages import Option
from handlers.menu import MenuItem

OPT_OUT = "reminders_opt_out"
OPT_OUT_AT = "reminders_opt_out_at"


def opted_out(ctx: Ctx) -> bool:
    return bool(ctx.memory.get(OPT_OUT, False))


def record(ctx: Ctx, *, off: bool) -> None:
    ctx.memory[OPT_OUT] = off
    ctx.memory[OPT_OUT_AT] = ctx.now.isoformat()


async def turn_off(ctx: Ctx) -> Outcome | None:
    record(ctx, off=True)
    ctx.say("reminders.settings.now_off")
    return None


async def turn_on(ctx: Ctx) -> Outcome | None:
    record(ctx, off=False)
    ctx.say("reminders.settings.now_on")
    return None


async def apply_choice(ctx: Ctx) -> Outcome | None:
    wanted_off = ctx.get("choice") == "off"
    if wanted_off == opted_out(ctx):
        ctx.say("reminders.settings.unchanged")
        return Finish()
    return await (turn_off(ctx) if wanted_off else turn_on(ctx))


def _status(ctx: Ctx) -> dict[str, str]:
    return {
        "status": ctx.t("reminders.settings.status_off" if opted_out(ctx) else "reminders.settings.status_on")
    }


SETTINGS = Flow(
    name="reminders",
    version=1,
    title="reminders.settings.title",
    help="reminders.settings.help",
    steps=(
        Choice(
            "choice",
            prompt="reminders.settings.ask",
            label="reminders.settings.choice",
            options=(Option("on", "reminders.settings.on"), Option("off", "reminders.settings.off")),
            prompt_params=_status,
        ),
        Action("apply", run=apply_choice, depends_on=("choice",)),
    ),
)

OFF = Flow(
    name="reminders_off", version=1, title="reminders.settings.off", steps=(Action("off", run=turn_off),)
)
ON = Flow(name="reminders_on", version=1, title="reminders.settings.on", steps=(Action("on", run=turn_on),))

FLOWS = (SETTINGS, OFF, ON)

MENU = (MenuItem("reminders", "reminders.settings.title", visible=lambda ctx: ctx.logged_in, order=80),)

INTENTS = {
    "reminders": ("提醒设置", "到期提醒", "reminder settings", "expiry reminders"),
    "reminders_off": ("关闭提醒", "取消提醒", "不要提醒", "reminders off", "stop reminders"),
    "reminders_on": ("开启提醒", "打开提醒", "恢复提醒", "reminders on", "start reminders"),
}
