"""Step code that finds no login raises ``LoginRequired``: the user is asked to log in (never
an internal error) and then the process continues at the step it was on."""

from __future__ import annotations

from pathlib import Path

from bot.engine.context import Ctx
from bot.engine.flow import Action, Field, Flow, FlowRegistry, LoginRequired, Outcome
from bot.engine.state import Session
from bot.testing import ChatHarness
from tests.engine.conftest import LOCALES


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


async def test_a_step_without_login_asks_for_it_and_then_continues(tmp_path: Path) -> None:
    chat = await ChatHarness.create(
        flows=FlowRegistry([LOGIN, SHOP]),
        db_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        catalog_dirs=[LOCALES],
    )
    try:
        await chat.tap("", token="@go:shop")
        asked = await chat.say("某某科技有限公司")
        assert asked[0] == "您的登录已失效，请重新登录，登录后将回到刚才的步骤。"
        assert "请输入姓名：" in asked[-1]
        assert not any("出了点问题" in text for text in asked)
        done = await chat.say("张三")
        assert "订单 某某科技有限公司 已支付。" in done  # the same step, with the answer kept
    finally:
        await chat.close()


async def test_the_same_in_english(tmp_path: Path) -> None:
    chat = await ChatHarness.create(
        flows=FlowRegistry([LOGIN, SHOP]),
        db_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        catalog_dirs=[LOCALES],
    )
    try:
        await chat.say("english", lang="en")
        await chat.tap("", token="@go:shop")
        asked = await chat.say("Acme Ltd")
        assert (
            asked[0]
            == "Your login is no longer valid. Please log in again; then you will be back at the same step."
        )
        done = await chat.say("Alice")
        assert any("Acme Ltd" in text for text in done)
    finally:
        await chat.close()
