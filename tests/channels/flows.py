"""A flow whose first step is slower than the WeChat passive window set in the tests."""

from __future__ import annotations

import asyncio

from bot.engine.context import Ctx
from bot.engine.flow import Action, Field, Flow

SLOW_SECONDS = 2.5


async def take_a_while(ctx: Ctx) -> None:
    await asyncio.sleep(SLOW_SECONDS)


SLOW = Flow(
    name="slow",
    version=1,
    title="testflows.kind",
    steps=(
        Action("think", run=take_a_while),
        Field("name", prompt="testflows.ask_name", label="testflows.name"),
    ),
)
