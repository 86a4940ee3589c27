"""A bug in flow code: the user gets an apology and the question again, and nothing the failed
code changed is kept, on both stores. What the failed code changed is the engine's own decoded
copy of the state (``Engine._decoded``, taken instead of decoding what was read), so the answer
after it must find that copy replaced by the state read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.engine.context import Ctx
from bot.engine.flow import Action, Field, Finish, Flow, FlowRegistry
from bot.testing import ChatHarness
from tests.engine.conftest import LOCALES

APOLOGY = "抱歉，系统处理时出了点问题"
ASK_NAME = "请输入姓名："
ASK_AGE = "请输入年龄："


class FailsOnce:
    """An action that changes the run and then fails, the first time only."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, ctx: Ctx) -> None:
        self.calls += 1
        ctx.set("touched", self.calls)
        ctx.state.memory["touched"] = True
        if self.calls == 1:
            raise RuntimeError("a bug in flow code")


async def _done(ctx: Ctx) -> Finish:
    return Finish(show_home=False)


@pytest.fixture
def action() -> FailsOnce:
    return FailsOnce()


@pytest.fixture(params=[False, True], ids=["sqlalchemy-store", "embedded-store"])
async def chat(
    request: pytest.FixtureRequest, tmp_path: Path, action: FailsOnce
) -> AsyncIterator[ChatHarness]:
    flow = Flow(
        name="form",
        version=1,
        title="testflows.form_title",
        steps=(
            Field("name", prompt="testflows.ask_name", label="testflows.name"),
            Action("check", run=action),
            Field("age", prompt="testflows.ask_age", label="testflows.age"),
            Action("done", run=_done),
        ),
    )
    harness = await ChatHarness.create(
        flows=FlowRegistry([flow]),
        db_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        catalog_dirs=[LOCALES],
        embedded=request.param,
    )
    yield harness
    await harness.close()


async def _stored(chat: ChatHarness) -> tuple[int, dict[str, object], dict[str, object]]:
    snapshot = await chat.store.load(chat.key("u1"), None)
    assert snapshot.state is not None
    state = chat.engine.codec.load(snapshot.state)
    assert state.run is not None
    return snapshot.version, dict(state.run.answers), dict(state.memory)


async def test_what_failed_flow_code_changed_is_not_kept_and_the_next_answer_goes_on(
    chat: ChatHarness, action: FailsOnce
) -> None:
    await chat.say("你好")
    assert any(ASK_NAME in text for text in await chat.tap("测试表单"))
    version, answers, memory = await _stored(chat)

    replies = await chat.say("张三")
    assert action.calls == 1
    assert APOLOGY in replies[0]
    assert ASK_NAME in replies[-1]  # asked again: the answer was not kept
    after_version, after_answers, after_memory = await _stored(chat)
    assert after_version == version + 1  # the apology and the question were committed
    assert (after_answers, after_memory) == (answers, memory)  # and nothing the code changed

    replies = await chat.say("李四")  # not the copy the failed code changed
    assert action.calls == 2
    assert ASK_AGE in replies[-1]
    _, answers, memory = await _stored(chat)
    assert (answers["name"], answers["touched"], memory.get("touched")) == ("李四", 2, True)
