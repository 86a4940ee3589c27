"""修改 UKey 密码: a UKey job of its own (no order, nothing to pay).

The current and the new PIN are typed on the PC, in the bridge, never in the chat.
"""

from __future__ import annotations

from bot.engine.context import Ctx
from bot.engine.flow import Action, Flow, Outcome, StartFlow
from handlers.my_seals import seal_steps
from handlers.ukey import PIN_JOB_PREFIX


async def to_ukey(ctx: Ctx) -> Outcome | None:
    return StartFlow("ukey", prefill={"_arg": PIN_JOB_PREFIX + str(ctx.get("seal_id"))})


PIN_CHANGE = Flow(
    name="pin_change",
    version=1,
    title="ukey.pin.title",
    help="ukey.pin.help",
    requires_login=True,
    steps=(*seal_steps("pin_change"), Action("ukey", run=to_ukey)),
)

FLOWS = (PIN_CHANGE,)

INTENTS = {
    "pin_change": (
        "修改密码",
        "改ukey密码",
        "修改ukey密码",
        "更改pin",
        "换个密码",
        "change my pin",
        "change pin",
        "change the ukey pin",
        "new pin",
        "set a new pin",
    ),
}
