"""Input at the current step: what a typed text, a tapped option or an uploaded file means there.

A field parses and checks its answer (a question typed there is answered first, a process name
is confirmed before it is taken); a choice matches an option; an upload is checked by content;
a summary confirms or opens a field to edit; a wait hands the input to its handlers. Storing an
answer clears what depended on the old one. Where the run goes next is the ``Runs`` walker's
(the interpreter): this module only decides what the input means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from bot.engine import progress, prompts
from bot.engine.context import Ctx
from bot.engine.flow import (
    Choice,
    Field,
    Flow,
    FlowRegistry,
    Invalid,
    Next,
    Outcome,
    Step,
    Summary,
    Upload,
    Wait,
)
from bot.engine.media import sniff
from bot.engine.messages import FileRef

FAILURES_BEFORE_HUMAN = 3


@runtime_checkable
class Understanding(Protocol):
    """What a home handler may also understand in free text (the handlers' ``Home`` does)."""

    def question(self, text: str) -> str | None:
        """``"faq"`` or ``"faq:<topic>"`` when the text is a question, else None."""

    def process_named(self, text: str) -> str | None:
        """The flow the text names and hardly anything else ("注销印章"), else None."""


class Runs(Protocol):
    """The walk of runs that input leads to (``FlowInterpreter`` is one)."""

    flows: FlowRegistry

    async def advance(self, ctx: Ctx, flow: Flow, *, announce_wait: bool = False) -> None: ...

    async def apply(self, ctx: Ctx, flow: Flow, outcome: Outcome | None) -> bool: ...

    async def prompt(self, ctx: Ctx, flow: Flow, step: Step) -> None: ...

    async def stale(self, ctx: Ctx) -> None: ...

    async def start(
        self, ctx: Ctx, name: str, *, prefill: dict[str, Any] | None = None, resume: bool = False
    ) -> None: ...

    def pause_current(self, ctx: Ctx) -> None: ...


class StepInput:
    def __init__(
        self,
        runs: Runs,
        *,
        intents: Callable[[str], str | None] | None,
        understanding: Understanding | None,
    ) -> None:
        self.runs = runs
        # Free text -> "flow" or "flow:arg"; lets a user switch process from a step that does
        # not take free text (a choice, a summary, an upload, a wait), as they would in a
        # conversation with a person. Typed answers to fields are never taken for intents,
        # but a question is answered, and a process name is confirmed before it is taken.
        self.intents = intents
        self.understanding = understanding

    async def on_text(self, ctx: Ctx, flow: Flow, step: Step, text: str) -> None:
        if isinstance(step, Field):
            if not (step.sensitive or step.secret) and await self.aside_at_field(ctx, flow, text):
                return
            await self.answer_field(ctx, flow, step, text)
        elif isinstance(step, Choice):
            options = await prompts.choice_options(ctx, step)
            picked = prompts.match_option(options, text)
            if picked is None:
                if await self.switch_by_intent(ctx, flow, text):
                    return
                await self.refuse(ctx, flow, step, Invalid("engine.pick_option"))
                return
            ctx.set(f"_label.{step.name}", picked.label)
            await self.store(ctx, flow, step, picked.token)
        elif isinstance(step, Upload):
            if await self.switch_by_intent(ctx, flow, text):
                return
            await self.refuse(ctx, flow, step, Invalid("engine.expected_file", kinds=prompts.kinds(step)))
        elif isinstance(step, Summary):
            if await self.switch_by_intent(ctx, flow, text):
                return
            await self.refuse(ctx, flow, step, Invalid("engine.pick_option"))
        elif isinstance(step, Wait):
            outcome = await step.on_message(ctx, text) if step.on_message else None
            if outcome is None and await self.switch_by_intent(ctx, flow, text):
                return
            await self.after_wait_input(ctx, flow, step, outcome)

    async def aside_at_field(self, ctx: Ctx, flow: Flow, text: str) -> bool:
        """Text at a free-text field that is not an answer: a question gets its answer (and
        the field is asked again after it); a process name is confirmed before it is taken."""
        understanding = self.understanding
        if understanding is None or not text:
            return False
        topic = understanding.question(text)
        if topic is not None:
            name, _, arg = topic.partition(":")
            if name in self.runs.flows and name != flow.name:
                await self.runs.start(ctx, name, prefill={"_arg": arg} if arg else None, resume=True)
                return True
        named = understanding.process_named(text)
        if named is not None and named in self.runs.flows and named != flow.name:
            ctx.run.confirming = f"switch:{named}"
            ctx.run.pending_text = text
            prompts.confirmation(ctx, flow, self.runs.flows)
            return True
        return False

    async def switch_by_intent(self, ctx: Ctx, flow: Flow, text: str) -> bool:
        """Start the process the text asks for, putting the current one aside (resumable)."""
        target = self.intents(text) if self.intents is not None else None
        if target is None:
            return False
        name, _, arg = target.partition(":")
        if name == flow.name or name not in self.runs.flows:
            return False
        self.runs.pause_current(ctx)
        await self.runs.start(ctx, name, prefill={"_arg": arg} if arg else None)
        return True

    async def after_wait_input(self, ctx: Ctx, flow: Flow, step: Wait, outcome: Outcome | None) -> None:
        """What the user wrote or tapped while waiting: ``None`` keeps waiting (the status is
        shown again); ``Next`` means the user's action ended the wait (it is done)."""
        if outcome is None:
            await self.runs.prompt(ctx, flow, step)
            return
        if isinstance(outcome, Next):
            ctx.run.wait_deadline = None
            progress.mark_done(ctx.run, step.name)
        if await self.runs.apply(ctx, flow, outcome):
            await self.runs.advance(ctx, flow)

    async def answer_field(self, ctx: Ctx, flow: Flow, step: Field, text: str) -> None:
        try:
            if not text:
                raise Invalid("engine.empty_answer")
            if len(text) > step.max_length:
                raise Invalid("engine.too_long", max=step.max_length)
            value = step.parse(text)
            if step.check is not None:
                checked = await step.check(ctx, value)
                if checked is not None:  # a check may normalise the answer
                    value = checked
        except Invalid as exc:
            await self.refuse(ctx, flow, step, exc)
            return
        await self.store(ctx, flow, step, value)

    async def on_option(self, ctx: Ctx, flow: Flow, step: Step, value: str) -> None:
        if isinstance(step, Summary):
            if value == "ok":
                progress.mark_done(ctx.run, step.name)
                await self.runs.advance(ctx, flow)
            elif value.startswith("edit:") and flow.has_step(value[5:]):
                progress.clear(flow, ctx.run, value[5:])
                ctx.run.editing = True
                await self.runs.advance(ctx, flow)
            else:
                await self.runs.stale(ctx)
        elif isinstance(step, Upload) and value == "done":
            files = ctx.answers.get(f"_files.{step.name}", [])
            if len(files) < step.min_files:
                await self.refuse(ctx, flow, step, Invalid("engine.need_more_files", count=step.min_files))
                return
            await self.store(ctx, flow, step, files)
        elif isinstance(step, Wait):
            outcome = await step.on_option(ctx, value) if step.on_option else None
            await self.after_wait_input(ctx, flow, step, outcome)
        elif isinstance(step, Field):
            await self.answer_field(ctx, flow, step, value)
        elif isinstance(step, Choice):
            options = await prompts.choice_options(ctx, step)
            picked = next((o for o in options if o.token == value), None)
            if picked is None:
                await self.runs.stale(ctx)
                return
            ctx.set(f"_label.{step.name}", picked.label)
            await self.store(ctx, flow, step, value)
        else:
            await self.runs.stale(ctx)

    async def on_file(self, ctx: Ctx, flow: Flow, step: Step, file: FileRef) -> None:
        if not isinstance(step, Upload):
            await self.refuse(ctx, flow, step, Invalid("engine.expected_text"))
            return
        kinds, limit = prompts.kinds(step), prompts.megabytes(step.max_bytes)
        try:
            if file.size > step.max_bytes:
                raise Invalid("engine.file_too_large", limit=limit, kinds=kinds)
            # The declared type is the sender's claim; the content decides.
            kind = sniff((await ctx.media.get(file.media_id))[:16])
            if kind not in step.accept:
                raise Invalid("engine.file_wrong_kind", kinds=kinds, limit=limit)
        except Invalid as exc:
            await self.refuse(ctx, flow, step, exc)
            return
        checked = FileRef(file.media_id, file.filename, kind, file.size)
        key = f"_files.{step.name}"
        files = [f for f in ctx.answers.get(key, []) if f["media_id"] != checked.media_id]
        files.append(checked.to_dict())
        ctx.set(key, files)
        if len(files) >= step.max_files:
            ctx.answers.pop(key, None)
            await self.store(ctx, flow, step, files)
            return
        ctx.say("engine.file_received", count=len(files), max=step.max_files)
        await self.runs.prompt(ctx, flow, step)

    async def store(self, ctx: Ctx, flow: Flow, step: Step, value: Any) -> None:
        # A new answer invalidates whatever was derived from the old one.
        if step.name in ctx.answers and ctx.answers[step.name] != value:
            progress.clear(flow, ctx.run, step.name)
        elif ctx.run.editing:
            for dependent in flow.dependents_of(step.name):
                progress.clear(flow, ctx.run, dependent)
        ctx.set(step.name, value)
        ctx.run.failures = 0
        ctx.run.editing = False
        await self.runs.advance(ctx, flow)

    async def refuse(self, ctx: Ctx, flow: Flow, step: Step, exc: Invalid) -> None:
        ctx.run.failures += 1
        ctx.say(exc.key, **exc.params)
        if ctx.run.failures >= FAILURES_BEFORE_HUMAN:
            ctx.say("engine.offer_human", options=[ctx.option("@human", "engine.nav_human")])
        await self.runs.prompt(ctx, flow, step)
