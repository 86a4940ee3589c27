"""UKey 助手 (the ukey-bridge program on the PC): pair one, list them with their online state,
revoke one. A revoked PC can no longer connect or receive jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, Outcome, StartFlow
from bot.engine.messages import Option
from handlers.menu import MenuItem
from handlers.my_seals import local_date
from handlers.services import services
from handlers.ukey import account_id, bridge_hub, hub_of


async def list_bridges(ctx: Ctx) -> Outcome | None:
    if hub_of(ctx) is None:
        ctx.say("ukey.not_available", options=[ctx.option("@human", "engine.nav_human")])
        return Finish(show_home=False)
    devices = await bridge_hub(ctx).list_devices(account_id(ctx))
    if not devices:
        ctx.say("bridges.none")
        return StartFlow("bridge_pair")
    lines = [ctx.t("bridges.list_title")]
    for i, device in enumerate(devices, 1):
        lines.append(
            ctx.t(
                "bridges.line",
                n=i,
                name=device.name,
                state=ctx.t("bridges.online" if device.online else "bridges.offline"),
                paired=local_date(device.created_at),
            )
        )
    ctx.say_text("\n".join(lines))
    return None


async def bridge_actions(ctx: Ctx) -> Sequence[Option]:
    devices = await bridge_hub(ctx).list_devices(account_id(ctx))
    options = [Option("pair", ctx.t("bridges.pair_another"))]
    options += [Option(f"revoke:{d.device_id}", ctx.t("bridges.revoke", name=d.name)) for d in devices]
    options.append(Option("done", ctx.t("bridges.done")))
    return options


def revoking(answers: Mapping[str, Any]) -> bool:
    return str(answers.get("action", "")).startswith("revoke:")


async def name_revoked(ctx: Ctx) -> Outcome | None:
    """Revoking cannot be undone (the PC must pair again): the question names the PC."""
    device_id = str(ctx.get("action")).removeprefix("revoke:")
    devices = await bridge_hub(ctx).list_devices(account_id(ctx))
    ctx.set("_device_name", next((d.name for d in devices if d.device_id == device_id), device_id))
    return None


async def act(ctx: Ctx) -> Outcome | None:
    action = str(ctx.get("action"))
    if action == "pair":
        return StartFlow("bridge_pair")
    if action.startswith("revoke:") and ctx.get("revoke_confirm") != "yes":
        ctx.say("bridges.revoke_kept")
        return Finish()
    if action.startswith("revoke:"):
        device_id = action.removeprefix("revoke:")
        if await bridge_hub(ctx).revoke_device(account_id(ctx), device_id):
            ctx.say("bridges.revoked")
        else:
            ctx.say("bridges.revoke_unknown")
    return Finish()


async def pairing_code(ctx: Ctx) -> Outcome | None:
    if hub_of(ctx) is None:
        ctx.say("ukey.not_available", options=[ctx.option("@human", "engine.nav_human")])
        return Finish(show_home=False)
    code = await bridge_hub(ctx).create_pairing_code(account_id(ctx), conversation_ref=str(ctx.key))
    ctx.say(
        "ukey.pair_instructions",
        code=code.code,
        server=services(ctx).public_base_url,
        minutes=max(1, round((code.expires_at - ctx.now).total_seconds() / 60)),
    )
    return Finish(show_home=False)


BRIDGES = Flow(
    name="bridges",
    version=2,
    title="bridges.title",
    help="bridges.help",
    requires_login=True,
    steps=(
        Action("list", run=list_bridges),
        Choice("action", prompt="bridges.ask_action", label="bridges.action", options=bridge_actions),
        Action("name_revoked", run=name_revoked, when=revoking, depends_on=("action",)),
        Choice(
            "revoke_confirm",
            prompt="bridges.ask_revoke",
            label="bridges.revoke_confirm",
            options=(Option("yes", "bridges.revoke_yes"), Option("no", "bridges.revoke_no")),
            prompt_params=lambda ctx: {"device": ctx.get("_device_name", "")},
            when=revoking,
            depends_on=("action",),
        ),
        Action("act", run=act, depends_on=("action", "revoke_confirm")),
    ),
)

PAIR = Flow(
    name="bridge_pair",
    version=1,
    title="bridges.pair_title",
    help="bridges.help",
    requires_login=True,
    steps=(Action("code", run=pairing_code),),
)

FLOWS = (BRIDGES, PAIR)

MENU = (MenuItem("bridges", "bridges.title", visible=lambda ctx: ctx.logged_in, order=70),)

INTENTS = {
    "bridges": (
        "ukey助手",
        "我的电脑",
        "已配对的电脑",
        "管理ukey助手",
        "my bridges",
        "ukey bridge",
        "paired computers",
        "list bridges",
        "revoke bridge",
    ),
    "bridge_pair": (
        "配对",
        "配对电脑",
        "连接ukey",
        "配对ukey助手",
        "pair",
        "pair my pc",
        "pair a bridge",
        "connect my ukey",
    ),
}
