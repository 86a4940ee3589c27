"""The user's privacy from the chat: 我的信息 (what is held, by category, masked) and where
account news is pushed.

Account news (payment received, review result, shipping, invoice) goes to every chat where the
account is logged in; a user who shares a device may prefer only the chat used last.
"""

from __future__ import annotations

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, Outcome
from bot.engine.messages import Option
from bot.engine.runtime import PUSH_LATEST_ONLY
from bot.engine.secrets_box import mask, mask_text
from handlers.menu import MenuItem
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.errors import NotAuthenticated, PlatformClientError


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


async def show_my_information(ctx: Ctx) -> Outcome | None:
    platform = services(ctx).platform
    try:
        account = await platform.accounts.me(token(ctx))
        orders = await platform.orders.list_orders(token(ctx))
        invoices = await platform.invoices.list_invoices(token(ctx))
    except NotAuthenticated:
        ctx.logout()
        ctx.say("accounts.session_expired")
        return Finish()
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    none = ctx.t("privacy.none")
    addresses = {
        mask_text(
            f"{str(a.get('recipient', ''))[:1]}** {a.get('phone', '')} {a.get('province', '')}{a.get('city', '')}"
        )
        for o in orders
        if (a := o.mailing_address)
    }
    scans = sum(len(o.documents) for o in orders)
    lines = [
        ctx.t("privacy.info_account", phone=mask(account.phone), since=account.created_at.date().isoformat()),
        ctx.t(
            "privacy.info_realname",
            name=(account.real_name[:1] + "*" * (len(account.real_name) - 1)) if account.real_name else none,
            id_number=account.id_number_masked or none,
        ),
        ctx.t("privacy.info_orders", count=len(orders), scans=scans),
        ctx.t("privacy.info_addresses", addresses="；".join(sorted(addresses)) or none),
        ctx.t(
            "privacy.info_invoices",
            count=len(invoices),
            titles="；".join(sorted({i.title for i in invoices})) or none,
        ),
        ctx.t("privacy.info_chat"),
    ]
    ctx.say_text("\n".join([ctx.t("privacy.info_title"), *lines]))
    return None


MY_INFORMATION = Flow(
    name="my_information",
    version=1,
    title="privacy.info_menu",
    help="privacy.info_help",
    requires_login=True,
    steps=(Action("show", run=show_my_information),),
)

FLOWS = (PUSH_SETTINGS, MY_INFORMATION)

MENU = (
    MenuItem("my_information", "privacy.info_menu", visible=lambda ctx: ctx.logged_in, order=84),
    MenuItem("push_settings", "privacy.push_title", visible=lambda ctx: ctx.logged_in, order=85),
)

INTENTS = {
    "my_information": ("我的信息", "个人信息", "我的数据", "my information", "my data"),
    "push_settings": ("推送设置", "通知设置", "消息推送", "push settings", "notification settings"),
}
