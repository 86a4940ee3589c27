"""Events that reached a wait while its run was put aside are replayed in order when it is taken
up again: one that keeps it waiting (progress news) does not hide a later one that ends the
wait, and the wait's status is said once, after the news."""

from __future__ import annotations

import pytest

from bot.engine.context import Ctx
from bot.engine.flow import FlowRegistry, Next, Outcome, Stay
from bot.engine.messages import ExternalEvent
from bot.testing import ChatHarness
from tests.engine.flows_for_tests import answer_up_to_the_wait, waiting_flow


async def on_event(ctx: Ctx, event: ExternalEvent) -> Outcome:
    if event.type == "job.stage":
        ctx.say_text(f"news: {event.data['stage']}")
        return Stay()
    return Next()


WAITING = waiting_flow(lambda ctx, event: event.type in ("job.stage", "order.paid"), on_event=on_event)


@pytest.fixture
def flows() -> FlowRegistry:
    return FlowRegistry([WAITING])


async def _put_aside_at_the_wait(chat: ChatHarness) -> None:
    await answer_up_to_the_wait(chat)
    await chat.say("菜单")  # put aside, still waiting


async def test_news_then_the_end_of_the_wait_both_replayed_and_the_run_finishes(chat: ChatHarness) -> None:
    await _put_aside_at_the_wait(chat)
    await chat.event(ExternalEvent("e1", "job.stage", {"stage": "working"}))
    await chat.event(ExternalEvent("e2", "order.paid", {}))
    resumed = "\n".join(await chat.tap("", token="@resume"))
    assert "news: working" in resumed
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.state["run"] is None, "the later event ended the wait: nothing waits for ever"


async def test_only_news_replayed_says_the_wait_status_once_after_it(chat: ChatHarness) -> None:
    await _put_aside_at_the_wait(chat)
    await chat.event(ExternalEvent("e1", "job.stage", {"stage": "one"}))
    await chat.event(ExternalEvent("e2", "job.stage", {"stage": "two"}))
    resumed = await chat.tap("", token="@resume")
    joined = "\n".join(resumed)
    assert joined.index("news: one") < joined.index("news: two") < joined.index("等待支付中。")
    assert joined.count("等待支付中。") == 1
