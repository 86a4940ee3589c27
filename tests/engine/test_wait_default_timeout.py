"""A wait without a timeout handler of its own puts the process aside, answers kept."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.engine.flow import FlowRegistry
from bot.engine.messages import ExternalEvent
from bot.testing import ChatHarness
from tests.engine.flows_for_tests import answer_up_to_the_wait, waiting_flow

WAITING = waiting_flow(lambda ctx, event: event.type == "order.paid", timeout=timedelta(minutes=10))


@pytest.fixture
def flows() -> FlowRegistry:
    return FlowRegistry([WAITING])


async def test_timeout_without_handler_pauses_the_process_and_resume_waits_again(chat: ChatHarness) -> None:
    await answer_up_to_the_wait(chat)
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
