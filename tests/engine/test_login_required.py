"""Step code that finds no login raises ``LoginRequired``: the user is asked to log in (never
an internal error) and then the process continues at the step it was on."""

from __future__ import annotations

from pathlib import Path

from bot.engine.context import Ctx
from bot.engine.flow import Action, Field, Flow, FlowRegistry, LoginRequired, Outcome
from bot.engine.state import Session
from bot.testing import ChatHarness
from tests.engine.conftest import LOCALES
from tests.engine.transcript import Lang


async def log_in(ctx: Ctx) -> Outcome | None:
    ctx.login(Session(account_id="acc-1", token="token-1", phone="13800138000"))
    return None


async def buy(ctx: Ctx) -> Outcome | None:
    if ctx.session is None:
        raise LoginRequired
    ctx.say("testflows.paid", order=ctx.get("company"))
    return None


LOGIN = Flow(
    name="login",
    version=1,
    title="testflows.form_title",
    steps=(Field("name", prompt="testflows.ask_name"), Action("login", run=log_in)),
)
# A process that does not declare the login it needs: the runtime still gets the user there.
SHOP = Flow(
    name="shop",
    version=1,
    title="testflows.form_title",
    steps=(Field("company", prompt="testflows.ask_company"), Action("buy", run=buy)),
)


WORDS = {
    "zh-CN": (
        "某某科技有限公司",
        "张三",
        "您的登录已失效，请重新登录，登录后将回到刚才的步骤。",
        "请输入姓名：",
    ),
    "en": (
        "Acme Ltd",
        "Alice",
        "Your login is no longer valid. Please log in again; then you will be back at the same step.",
        "Your name:",
    ),
}


async def test_a_step_without_login_asks_for_it_and_then_continues(tmp_path: Path, lang: Lang) -> None:
    company, name, relogin, ask_name = WORDS[lang.code]
    chat = await ChatHarness.create(
        flows=FlowRegistry([LOGIN, SHOP]),
        db_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        catalog_dirs=[LOCALES],
    )
    try:
        await chat.say(lang.hello, lang=lang.code)
        await chat.tap("", token="@go:shop")
        asked = await chat.say(company)
        assert asked[0] == relogin
        assert ask_name in asked[-1]
        assert not any("出了点问题" in text or "went wrong" in text for text in asked)
        done = await chat.say(name)
        assert any(company in text for text in done)  # the same step, with the answer kept
    finally:
        await chat.close()
