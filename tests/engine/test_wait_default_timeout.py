"""A wait without a timeout handler of its own puts the process aside, answers kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.engine.flow import Field, Flow, FlowRegistry, Wait
from bot.engine.messages import ExternalEvent
from bot.testing import ChatHarness

LOCALES = Path(__file__).parent / "locales"

WAITING = Flow(
    name="waiting",
    version=1,
    title="testflows.form_title",
    steps=(
        Field("name", prompt="testflows.ask_name", label="testflows.name"),
        Wait(
            "payment",
            status="testflows.waiting_payment",
            accepts=lambda ctx, event: event.type == "order.paid",
            timeout=timedelta(minutes=10),
        ),
    ),
)


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[ChatHarness]:
    harness = await ChatHarness.create(
        flows=FlowRegistry([WAITING]), db_url=f"sqlite+aiosqlite:///{tmp_path}/w.db", catalog_dirs=[LOCALES]
    )
    yield harness
    await harness.close()


async def test_timeout_without_handler_pauses_the_process_and_resume_waits_again(chat: ChatHarness) -> None:
    await chat.say("菜单")
    await chat.tap("测试表单")
    assert "等待支付中。" in await chat.say("张三")
    chat.clock.advance(timedelta(minutes=11))
    assert await chat.engine.fire_due_timeouts() == 1
    await chat.dispatcher.drain()
    said = "\n".join(chat.transcript()[-3:])
    assert "等待超时" in said
    resumed = "\n".join(await chat.tap("", token="@resume"))
    assert "等待支付中。" in resumed
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.state["run"]["answers"]["name"] == "张三"
    done = await chat.event(ExternalEvent("paid-1", "order.paid", {}))
    assert done  # the wait resolved: the process finished and the menu came back
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.state["run"] is None
