"""Help and frequently asked questions, answered from what the platform manual says.

Each topic is one catalog text (``faq.<topic>``); a question typed in free text lands on its
topic through ``INTENTS`` ("怎么续期" -> the renewal-window answer), and the answer offers the
process it is about, so help is never a dead end.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, Outcome
from bot.engine.messages import Option
from handlers.menu import MenuItem
from handlers.services import services
from platform_client.errors import PlatformClientError

# topic -> the process the answer leads to (None: nothing to start)
TOPICS: dict[str, str | None] = {
    "process": None,
    "register": "register",
    "realname": "realname",
    "documents": "apply_enterprise",
    "both_seals": "apply_enterprise",
    "payment": "my_orders",
    "review": "my_orders",
    "shipping": "my_orders",
    "invoice": "invoice",
    "renewal_window": "my_seals",
    "change": "my_seals",
    "reissue": "my_seals",
    "unlock": "my_seals",
    "cancel": "my_seals",
    "ukey_bridge": "bridges",
    "hotline": None,
}


async def topic_options(ctx: Ctx) -> Sequence[Option]:
    return [Option(topic, ctx.t(f"faq.q_{topic}")) for topic in TOPICS]


async def preset_topic(ctx: Ctx) -> Outcome | None:
    """A question typed in free text arrives with its topic already chosen."""
    topic = ctx.get("_arg")
    if topic in TOPICS:
        ctx.set("topic", topic)
        ctx.set("_label.topic", ctx.t(f"faq.q_{topic}"))
    return None


async def answer(ctx: Ctx) -> Outcome:
    topic = str(ctx.get("topic"))
    follow_up = TOPICS.get(topic)
    options = [ctx.option("@go:faq", "faq.more_questions"), ctx.option("@menu", "engine.nav_menu")]
    if follow_up:
        options.insert(0, ctx.option(f"@go:{follow_up}", f"faq.go_{follow_up}"))
    if topic == "hotline":
        await _say_hotline(ctx, options)
    else:
        ctx.say(f"faq.a_{topic}", options=options)
    return Finish(show_home=False)


async def _say_hotline(ctx: Ctx, options: list[Option]) -> None:
    """The operator's own hotline and hours (platform settings), or only the human hand-over."""
    try:
        operator = await services(ctx).platform.operator.get()
    except PlatformClientError:
        operator = None
    if operator is None or not operator.hotline:
        ctx.say("faq.a_hotline_none", options=options)
        return
    hours = ctx.t("faq.hotline_hours", hours=operator.support_hours) if operator.support_hours else ""
    ctx.say(
        "faq.a_hotline",
        options=options,
        hotline=operator.hotline,
        company=operator.company or operator.service_name,
        hours=hours,
    )


FAQ = Flow(
    name="faq",
    version=1,
    title="faq.title",
    steps=(
        Action("preset", run=preset_topic),
        Choice("topic", prompt="faq.ask_topic", label="faq.topic", options=topic_options),
        Action("answer", run=answer),
    ),
)

FLOWS = (FAQ,)
MENU = (MenuItem("faq", "faq.title", order=95),)
INTENTS = {
    "faq": ("常见问题", "帮助中心", "问题", "faq", "questions", "how does it work"),
    "faq:process": ("办理流程", "怎么办理", "流程是什么", "how to apply", "what are the steps"),
    "faq:documents": ("需要什么材料", "要上传什么", "需要哪些资料", "what documents", "which files"),
    "faq:both_seals": ("两个印章", "都要办吗", "法人章也要办", "do i need both", "both seals"),
    "faq:shipping": ("什么时候发货", "快递", "顺丰", "多久能收到", "when will it ship", "delivery"),
    "faq:review": ("审核多久", "审核要多久", "怎么还没审核", "how long is the review", "review time"),
    "faq:renewal_window": (
        "什么时候能续期",
        "多久可以续期",
        "续期条件",
        "when can i renew",
        "renewal window",
    ),
    "faq:unlock": ("密码忘了", "忘记密码", "pin码错", "密码输错了", "wrong pin", "what if i forget the pin"),
    "faq:hotline": ("客服电话", "热线", "电话多少", "hotline", "phone number of support"),
}
