"""Expiry-reminder settings by chat: 提醒设置, 关闭提醒 / 开启提醒 ("reminders off" / "on"), and
提醒方式 ("reminder channels": by chat, SMS to the account's phone, e-mail).

The choice is kept in this conversation's memory with the time it was made; the scheduler reads
the most recent choice across all chat identities of the account (``scheduler.reminders``
spells the same memory names: handlers do not import the scheduler).
"""

from __future__ import annotations

from typing import Protocol

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, Outcome
from bot.engine.messages import ConversationKey, Option
from handlers.menu import MenuItem
from handlers.services import HandlerServices

OPT_OUT = "reminders_opt_out"
OPT_OUT_AT = "reminders_opt_out_at"
CHOSEN_CHANNELS = "reminders_channels"
CHOSEN_AT = "reminders_channels_at"
ALL_CHANNELS = ("chat", "sms", "email")
# Where the composition root puts the 订阅通知 consent page (scheduler.consent_page) in
# ``HandlerServices.extra``; handlers do not import the scheduler, so it is named here.
CONSENT_PAGE = "reminder_consent_page"
# The choices offered: the channels each one keeps, most complete first.
CHANNEL_SETS = {
    "all": ("chat", "sms", "email"),
    "chat_sms": ("chat", "sms"),
    "chat": ("chat",),
    "sms": ("sms",),
}


class ConsentPage(Protocol):
    def url(self, key: ConversationKey, locale: str) -> str | None: ...


def offer_consent(ctx: Ctx) -> None:
    """On WeChat, a link to allow the reminder 订阅通知, when reminders may use the chat: outside
    the 48-hour window WeChat delivers only what the user allowed there."""
    found = ctx.services.extra.get(CONSENT_PAGE) if isinstance(ctx.services, HandlerServices) else None
    if found is None or opted_out(ctx) or "chat" not in chosen_channels(ctx):
        return
    page: ConsentPage = found
    url = page.url(ctx.key, ctx.locale)
    if url:
        ctx.say("reminders.consent.ask")
        ctx.link(url, ctx.t("reminders.consent.link"))


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
    offer_consent(ctx)
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


def chosen_channels(ctx: Ctx) -> tuple[str, ...]:
    chosen = ctx.memory.get(CHOSEN_CHANNELS)
    if not isinstance(chosen, list):
        return ALL_CHANNELS
    return tuple(c for c in ALL_CHANNELS if c in chosen)


def _channels_text(ctx: Ctx) -> dict[str, str]:
    names = [ctx.t(f"reminders.channels.name_{c}") for c in chosen_channels(ctx)]
    return {"current": ctx.t("reminders.channels.separator").join(names) or ctx.t("reminders.channels.none")}


async def apply_channels(ctx: Ctx) -> Outcome | None:
    wanted = CHANNEL_SETS.get(str(ctx.get("channels")), ALL_CHANNELS)
    if wanted == chosen_channels(ctx):
        ctx.say("reminders.settings.unchanged")
        return Finish()
    ctx.memory[CHOSEN_CHANNELS] = list(wanted)
    ctx.memory[CHOSEN_AT] = ctx.now.isoformat()
    ctx.say("reminders.channels.saved", current=_channels_text(ctx)["current"])
    offer_consent(ctx)
    return None


CHANNELS = Flow(
    name="reminder_channels",
    version=1,
    title="reminders.channels.title",
    help="reminders.channels.help",
    steps=(
        Choice(
            "channels",
            prompt="reminders.channels.ask",
            label="reminders.channels.choice",
            options=tuple(Option(name, f"reminders.channels.set_{name}") for name in CHANNEL_SETS),
            prompt_params=_channels_text,
        ),
        Action("apply", run=apply_channels, depends_on=("channels",)),
    ),
)

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

FLOWS = (SETTINGS, OFF, ON, CHANNELS)

MENU = (
    MenuItem("reminders", "reminders.settings.title", visible=lambda ctx: ctx.logged_in, order=80),
    MenuItem("reminder_channels", "reminders.channels.title", visible=lambda ctx: ctx.logged_in, order=81),
)

INTENTS = {
    "reminders": ("提醒设置", "到期提醒", "reminder settings", "expiry reminders"),
    "reminders_off": ("关闭提醒", "取消提醒", "不要提醒", "reminders off", "stop reminders"),
    "reminders_on": ("开启提醒", "打开提醒", "恢复提醒", "reminders on", "start reminders"),
    "reminder_channels": ("提醒方式", "提醒渠道", "短信提醒", "邮件提醒", "reminder channels"),
}
