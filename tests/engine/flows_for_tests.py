"""Small flows that exercise every engine feature, independent of the seal processes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from bot.engine.context import Ctx
from bot.engine.flow import (
    Action,
    Choice,
    Field,
    Finish,
    Flow,
    Invalid,
    Step,
    StepResult,
    Summary,
    Upload,
    Wait,
)
from bot.engine.messages import ExternalEvent, Option
from bot.testing import ChatHarness


def parse_age(text: str) -> int:
    if not text.isdigit():
        raise Invalid("testflows.age_not_number")
    return int(text)


async def remember_order(ctx: Ctx) -> None:
    ctx.set("order_id", f"order-{ctx.run.run_id}")


def accepts_payment(ctx: Ctx, event: ExternalEvent) -> bool:
    return event.type == "order.paid" and event.data.get("order_id") == ctx.get("order_id")


async def paid(ctx: Ctx, event: ExternalEvent) -> None:
    ctx.say("testflows.paid", order=event.data["order_id"])


async def timed_out(ctx: Ctx) -> Finish:
    ctx.say("testflows.timed_out")
    return Finish()


FORM = Flow(
    name="form",
    version=1,
    title="testflows.form_title",
    steps=(
        Field("name", prompt="testflows.ask_name", label="testflows.name"),
        Choice(
            "kind",
            prompt="testflows.ask_kind",
            label="testflows.kind",
            options=(Option("company", "testflows.company"), Option("person", "testflows.person")),
        ),
        Field(
            "company",
            prompt="testflows.ask_company",
            label="testflows.company_name",
            when=lambda a: a.get("kind") == "company",
            depends_on=("kind",),
        ),
        Field("age", prompt="testflows.ask_age", label="testflows.age", parse=parse_age),
        Field("id_number", prompt="testflows.ask_id", label="testflows.id", sensitive=True),
        Upload("scan", prompt="testflows.ask_scan", label="testflows.scan", max_bytes=1024),
        Summary("confirm"),
        Action("submit", run=remember_order),
        Wait(
            "payment",
            status="testflows.waiting_payment",
            accepts=accepts_payment,
            on_event=paid,
            timeout=timedelta(minutes=30),
            on_timeout=timed_out,
        ),
    ),
)


def _form_v2_steps() -> tuple[Step, ...]:
    """FORM as a later deploy changes it: the age is no longer asked, a phone is asked after
    the name, everything else is as before."""
    steps: list[Step] = []
    for step in FORM.steps:
        if step.name == "age":
            continue
        steps.append(step)
        if step.name == "name":
            steps.append(
                Field("phone", prompt="testflows.ask_phone", label="testflows.phone", sensitive=True)
            )
    return tuple(steps)


FORM_V2 = Flow(name="form", version=2, title="testflows.form_title", steps=_form_v2_steps())


def waiting_flow(
    accepts: Callable[[Ctx, ExternalEvent], bool],
    *,
    on_event: Callable[[Ctx, ExternalEvent], StepResult] | None = None,
    timeout: timedelta | None = None,
) -> Flow:
    """The test form (``测试表单``) that asks a name, then waits for a payment."""
    return Flow(
        name="waiting",
        version=1,
        title="testflows.form_title",
        steps=(
            Field("name", prompt="testflows.ask_name", label="testflows.name"),
            Wait(
                "payment",
                status="testflows.waiting_payment",
                accepts=accepts,
                on_event=on_event,
                timeout=timeout,
            ),
        ),
    )


async def answer_up_to_the_wait(chat: ChatHarness) -> None:
    """Open the waiting form and answer its one question: the run now waits for the payment."""
    await chat.say("菜单")
    await chat.tap("测试表单")
    assert "等待支付中。" in await chat.say("张三")
