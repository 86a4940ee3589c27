"""Interprets declared flows: which step is next, what an answer means, what to say.

The rule that makes editing, back, versioned resumption and conditional steps one mechanism:
the current step is always *the first applicable step that is not done*. An input step is done
when its answer is stored; an Action or Wait when it is marked done; the Summary when confirmed.
Changing an answer clears the answers that depend on it, so they become "not done" again.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import (
    PREVIOUS,
    Action,
    Choice,
    Field,
    Finish,
    Flow,
    FlowRegistry,
    GoTo,
    Invalid,
    Next,
    Outcome,
    StartFlow,
    Stay,
    Step,
    Summary,
    Upload,
    Wait,
)
from bot.engine.media import sniff
from bot.engine.messages import ExternalEvent, FileRef, Inbound, InboundKind, Option, Origin
from bot.engine.state import PAUSED, FlowRun, Owner

log = logging.getLogger("sealbot.engine")

HomeHandler = Callable[[Ctx, Inbound | None], Awaitable[Outcome | None]]

DONE = "_done"  # answers[DONE]: names of Actions/Waits/Summary that are done
QUEUED = "_events"  # answers[QUEUED]: events that arrived while this run was paused
SUMMARY_PICK = "_summary_pick"  # answers[SUMMARY_PICK]: the summary shows the list of answers to edit
OWNER = "_account"  # answers[OWNER]: the account a run was put aside under
MAX_STEPS_PER_MESSAGE = 60
FAILURES_BEFORE_HUMAN = 3

# Control characters, zero-width space, direction marks and bidi overrides. The zero-width
# joiner and non-joiner (U+200C/D) stay: emoji sequences and some scripts are made of them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# Navigation words work in both languages whatever the user's locale.
NAV_WORDS: dict[str, set[str]] = {
    "@back": {"返回", "上一步", "back", "previous"},
    "@cancel": {"取消", "退出", "cancel", "quit", "/cancel"},
    "@help": {"帮助", "help", "?", "？", "/help"},
    "@human": {"人工", "转人工", "人工客服", "客服", "human", "agent", "/human"},
    "@menu": {"菜单", "主菜单", "menu", "/menu", "/start"},
    "@lang:en": {"english", "/english"},
    "@lang:zh-CN": {"中文", "/chinese"},
}


def clean_text(text: str) -> str:
    """NFC, control and bidi characters removed, surrounding space trimmed."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()


def nav_token(text: str) -> str | None:
    word = text.strip().lower()
    for token, words in NAV_WORDS.items():
        if word in words:
            return token
    return None


class FlowInterpreter:
    TIMEOUT_EVENT = "engine.timeout"

    def __init__(
        self,
        flows: FlowRegistry,
        *,
        home: HomeHandler | None = None,
        intents: Callable[[str], str | None] | None = None,
    ) -> None:
        self.flows = flows
        self.home = home or self._menu_of_all_flows
        # Free text -> "flow" or "flow:arg"; lets a user switch process from a step that does
        # not take free text (a choice, a summary, an upload, a wait), as they would in a
        # conversation with a person. Typed answers to fields are never taken for intents.
        self.intents = intents

    async def _menu_of_all_flows(self, ctx: Ctx, inbound: Inbound | None) -> Outcome | None:
        """The fallback home: every registered flow as a button. The handlers package installs
        the real home (main menu and free-text intents)."""
        options = []
        for name in self.flows.names():
            flow = self.flows.get(name)
            assert flow is not None
            options.append(Option(f"@go:{name}", ctx.t(flow.title)))
        ctx.state.last_menu = [o.token for o in options]
        ctx.say("engine.menu", options=options)
        return None

    # ---- entry points -------------------------------------------------------------------------

    async def on_user_input(self, ctx: Ctx, inbound: Inbound) -> None:
        token = self._token_of(ctx, inbound)
        if token is not None and token.startswith("@"):
            await self._global(ctx, token)
            return
        if ctx.state.run is None:
            await self._go_home(ctx, inbound)
            return
        asked = ctx.state.run.step
        upgraded = ctx.state.run.version
        flow = self._flow_of(ctx)
        if flow is None:
            await self._go_home(ctx, None)
            return
        step = self._current(ctx, flow)
        if step is None:
            await self._advance(ctx, flow)
            return
        if upgraded != flow.version and step.name != asked:
            # A deploy changed the process under this conversation and the question the user
            # is answering is no longer the one to ask: say so and ask the right one, rather
            # than file the answer under another question.
            ctx.say("engine.flow_updated", process=ctx.t(flow.title))
            await self._advance(ctx, flow, announce_wait=True)
            return
        if token is not None:
            scoped = self._scoped(ctx, flow, step, token)
            if scoped is None:
                ctx.say("engine.stale_button")
                await self._prompt(ctx, flow, step)
                return
            await self._on_option(ctx, flow, step, scoped)
            return
        if inbound.kind is InboundKind.FILE and inbound.file is not None:
            await self._on_file(ctx, flow, step, inbound.file)
            return
        await self._on_text(ctx, flow, step, clean_text(inbound.text))

    async def on_event(self, ctx: Ctx, event: ExternalEvent) -> bool:
        """Returns whether a flow consumed the event (a waiting step, or a timeout)."""
        run = ctx.state.run
        if event.type == self.TIMEOUT_EVENT:
            return await self._on_timeout(ctx, event)
        if run is not None:
            flow = self._flow_of(ctx)
            step = self._current(ctx, flow) if flow else None
            if flow and isinstance(step, Wait) and step.accepts and step.accepts(ctx, event):
                await self._resolve_wait(ctx, flow, step, event)
                return True
        # A flow the user put aside may be waiting for it: keep it for when they come back
        # (the generic status push still tells the user now).
        item = {"event_id": event.event_id, "type": event.type, "data": event.data}
        for stacked in ctx.state.stack:
            if self._run_waits_for(ctx, stacked, event):
                stacked.answers.setdefault(QUEUED, []).append(item)
                return False
        paused_runs = ctx.state.memory.get(PAUSED, {})
        for name, data in paused_runs.items():
            paused = FlowRun.from_dict(data)
            if self._run_waits_for(ctx, paused, event):
                paused.answers.setdefault(QUEUED, []).append(item)
                paused_runs[name] = paused.__dict__.copy()
                return False
        return False

    def would_consume(self, ctx: Ctx, event: ExternalEvent) -> bool:
        runs = [r for r in [ctx.state.run, *ctx.state.stack, *self._paused_runs(ctx)] if r is not None]
        return any(self._run_waits_for(ctx, run, event) for run in runs)

    def expects_sensitive(self, ctx: Ctx) -> bool:
        """Whether the user is answering a sensitive question (the one last asked). Read-only:
        upgrading the run here would hide from ``on_user_input`` that a deploy moved it."""
        run = ctx.state.run
        if run is None:
            return False
        flow = self.flows.get(run.flow)
        if flow is None:
            return True  # a retired process: what it asked is unknown, so keep nothing
        if not flow.has_step(run.step):
            return False
        step = flow.step(run.step)
        return isinstance(step, Field) and (step.sensitive or step.secret)

    async def reprompt(self, ctx: Ctx) -> None:
        if ctx.state.run is None:
            return
        flow = self._flow_of(ctx)
        if flow is None:
            return
        step = self._current(ctx, flow)
        if step is not None and (step.asks_user or isinstance(step, Wait)):
            await self._prompt(ctx, flow, step)

    # ---- global commands ------------------------------------------------------------------------

    async def _global(self, ctx: Ctx, token: str) -> None:
        if token == "@cancel":
            await self._cancel(ctx)
        elif token == "@back":
            await self._back(ctx)
        elif token == "@help":
            flow = self._flow_of(ctx) if ctx.state.run else None
            ctx.say(flow.help if flow and flow.help else "engine.help")
            await self.reprompt(ctx)
        elif token == "@human":
            ctx.state.owner = Owner.WAITING
            # The owner is no longer the bot when this leaves, so a bot message would be held:
            # the confirmation is a system notice, which reaches the user whoever owns the chat.
            ctx.say_text(ctx.t("engine.handoff_waiting"), origin=Origin.SYSTEM)
        elif token == "@menu":
            self._pause_current(ctx)
            await self._go_home(ctx, None)
        elif token.startswith("@lang:"):
            locale = token.split(":", 1)[1]
            ctx.state.locale = locale
            ctx.t.locale = locale
            ctx.say("engine.language_set")
            if ctx.state.run:
                await self.reprompt(ctx)
            else:
                await self._go_home(ctx, None)
        elif token.startswith("@go:"):
            _, name, *rest = token.split(":", 2)
            prefill = {"_arg": rest[0]} if rest else {}
            await self.start(ctx, name, prefill=prefill)
        elif token == "@resume":
            await self._resume_latest(ctx)
        else:
            ctx.say("engine.stale_button")
            await self.reprompt(ctx)

    async def start(
        self, ctx: Ctx, name: str, *, prefill: dict[str, Any] | None = None, resume: bool = False
    ) -> None:
        flow = self.flows.get(name)
        if flow is None:
            ctx.say("engine.unknown_process")
            await self._go_home(ctx, None)
            return
        if ctx.state.run is not None and ctx.state.run.flow != name:
            if resume:
                ctx.state.stack.append(ctx.state.run)
            else:
                self._pause_current(ctx)
            ctx.state.run = None
        paused = ctx.state.memory.get(PAUSED, {}).pop(name, None)
        if paused is not None and not prefill:
            put_aside = FlowRun.from_dict(paused)
            if flow.requires_login and not ctx.logged_in and self.flows.get("login") is not None:
                # Logged out since: log in, then the login flow's end takes this run up again.
                ctx.state.stack.append(put_aside)
                ctx.say("engine.login_to_resume", process=ctx.t(flow.title))
                await self.start(ctx, "login")
                return
            await self._take_up(ctx, flow, put_aside, welcome=True)
            return
        if ctx.state.run is not None and ctx.state.run.flow == name and not prefill:
            await self.reprompt(ctx)
            return
        if flow.requires_login and not ctx.logged_in and self.flows.get("login") is not None:
            pending = FlowRun(flow=name, version=flow.version, run_id=ctx.state.next_run_id(), step="")
            pending.answers.update(prefill or {})
            ctx.state.stack.append(pending)
            ctx.say("engine.login_first", process=ctx.t(flow.title))
            await self.start(ctx, "login")
            return
        run = FlowRun(flow=name, version=flow.version, run_id=ctx.state.next_run_id(), step="")
        run.answers.update(prefill or {})
        ctx.state.run = run
        await self._advance(ctx, flow)

    async def _cancel(self, ctx: Ctx) -> None:
        run = ctx.state.run
        if run is None:
            await self._go_home(ctx, None)
            return
        flow = self.flows.get(run.flow)
        if flow is not None and flow.on_cancel is not None:
            ctx.flow = flow
            await flow.on_cancel(ctx)
        ctx.state.run = None
        ctx.state.stack.clear()
        ctx.say("engine.cancelled", process=ctx.t(flow.title) if flow else run.flow)
        await self._go_home(ctx, None)

    async def _back(self, ctx: Ctx) -> None:
        run = ctx.state.run
        flow = self._flow_of(ctx) if run else None
        if run is None or flow is None:
            await self._go_home(ctx, None)
            return
        current = self._current(ctx, flow)
        history = [n for n in run.history if flow.has_step(n) and (current is None or n != current.name)]
        if not history:
            ctx.say("engine.at_first_step")
            await self.reprompt(ctx)
            return
        previous = history[-1]
        run.history = history[:-1]
        self._clear(ctx, flow, previous)
        await self._advance(ctx, flow)

    # ---- the home menu and paused flows --------------------------------------------------------

    async def _go_home(self, ctx: Ctx, inbound: Inbound | None) -> None:
        outcome = await self.home(ctx, inbound)
        if isinstance(outcome, StartFlow):
            await self.start(ctx, outcome.flow, prefill=dict(outcome.prefill), resume=outcome.resume)

    def _paused_runs(self, ctx: Ctx) -> list[FlowRun]:
        return [FlowRun.from_dict(d) for d in ctx.state.memory.get(PAUSED, {}).values()]

    def _pause_current(self, ctx: Ctx) -> None:
        run = ctx.state.run
        if run is None:
            return
        if ctx.session is not None:
            # Whose answers these are: another account logging in on this chat never sees them.
            run.answers[OWNER] = ctx.session.account_id
        ctx.state.memory.setdefault(PAUSED, {})[run.flow] = run.__dict__.copy()
        ctx.state.run = None

    async def _take_up(self, ctx: Ctx, flow: Flow, run: FlowRun, *, welcome: bool) -> None:
        """Continue a run that was put aside or waited under another flow, after checking that
        it still belongs to this account and still makes sense (``Flow.on_resume``)."""
        owner = run.answers.pop(OWNER, None)
        if owner is not None and (ctx.session is None or ctx.session.account_id != owner):
            ctx.say("engine.resume_other_account", process=ctx.t(flow.title))
            await self._go_home(ctx, None)
            return
        ctx.state.run = run
        ctx.flow = flow
        self._upgrade(ctx, flow)
        if flow.on_resume is not None:
            outcome = await flow.on_resume(ctx)
            if isinstance(outcome, StartFlow) and outcome.flow == flow.name:
                ctx.state.run = None
                await self.start(ctx, flow.name, prefill=dict(outcome.prefill))
                return
            if outcome is not None and not isinstance(outcome, Next):
                if await self._apply(ctx, flow, outcome):
                    await self._advance(ctx, flow)
                return
        if welcome:
            ctx.say("engine.resumed", process=ctx.t(flow.title))
        await self._advance(ctx, flow, announce_wait=True)

    async def login_again(self, ctx: Ctx) -> None:
        """Step code found no usable login (``LoginRequired``): log in, then continue the
        process at the step the user was on (the run waits on the stack)."""
        ctx.logout()
        if ctx.state.run is not None:
            ctx.state.stack.append(ctx.state.run)
            ctx.state.run = None
        if self.flows.get("login") is None:
            await self._go_home(ctx, None)
            return
        ctx.say("engine.login_again")
        await self.start(ctx, "login")

    async def _resume_latest(self, ctx: Ctx) -> None:
        paused = ctx.state.memory.get(PAUSED, {})
        if not paused:
            await self._go_home(ctx, None)
            return
        name = list(paused)[-1]
        await self.start(ctx, name)

    # ---- stepping -----------------------------------------------------------------------------

    def _flow_of(self, ctx: Ctx) -> Flow | None:
        run = ctx.state.run
        assert run is not None
        flow = self.flows.get(run.flow)
        if flow is None:
            # The process was removed by a deploy: say so instead of failing.
            ctx.state.run = None
            ctx.say("engine.process_retired")
            return None
        if run.version != flow.version:
            self._upgrade(ctx, flow)
        ctx.flow = flow
        return flow

    def _upgrade(self, ctx: Ctx, flow: Flow) -> None:
        """Resume a run saved under another version: keep the answers the flow still asks for
        and whatever its actions stored (order ids, ...); drop the answers of input steps the
        new version no longer has (``history`` names every input step that was asked). The
        first step not done is where the user continues, and a summary confirmed before is
        confirmed again if the new version asks something new before it."""
        run = ctx.state.run
        assert run is not None
        if run.version == flow.version:
            return
        names = {s.name for s in flow.steps}
        for gone in [n for n in run.history if n not in names]:
            for key in (gone, f"_label.{gone}", f"_files.{gone}"):
                run.answers.pop(key, None)
        done = [n for n in run.answers.get(DONE, []) if n in names]
        for index, step in enumerate(flow.steps):
            if isinstance(step, Summary) and step.name in done:
                before = flow.steps[:index]
                if any(
                    isinstance(s, (Field, Choice, Upload))
                    and s.applies(run.answers)
                    and s.name not in run.answers
                    for s in before
                ):
                    done.remove(step.name)
        if DONE in run.answers:
            run.answers[DONE] = done
        run.history = [n for n in run.history if n in names]
        run.version = flow.version

    def _is_done(self, run: FlowRun, step: Step) -> bool:
        if isinstance(step, (Field, Choice, Upload)):
            return step.name in run.answers
        return step.name in run.answers.get(DONE, [])

    def _current(self, ctx: Ctx, flow: Flow | None) -> Step | None:
        if flow is None:
            return None
        run = ctx.run
        for step in flow.steps:
            if step.applies(run.answers) and not self._is_done(run, step):
                return step
        return None

    def _mark_done(self, ctx: Ctx, name: str) -> None:
        done = ctx.run.answers.setdefault(DONE, [])
        if name not in done:
            done.append(name)

    def _clear(self, ctx: Ctx, flow: Flow, name: str, *, keep_previous: bool = False) -> None:
        """Forget an answer and everything that depends on it, and the confirmation. An answer
        edited from the summary is kept aside so that asking it again shows what it was."""
        run = ctx.run
        # Only the answer being changed: the ones depending on it are void, not "current".
        if keep_previous and name in run.answers and flow.has_step(name):
            step = flow.step(name)
            if isinstance(step, Field) and not step.secret:
                run.answers[PREVIOUS + name] = run.answers[name]
        for step_name in {name} | flow.dependents_of(name):
            run.answers.pop(step_name, None)
            if step_name in run.answers.get(DONE, []):
                run.answers[DONE].remove(step_name)
        for step in flow.steps:
            if isinstance(step, Summary) and step.name in run.answers.get(DONE, []):
                run.answers[DONE].remove(step.name)

    async def _advance(self, ctx: Ctx, flow: Flow, *, announce_wait: bool = False) -> None:
        """Run actions and stop at the next step that needs the user or an event.

        ``announce_wait``: the user comes back to this run (resumed from the menu, returned
        to after another flow), so a Wait entered earlier says again what it awaits."""
        for _ in range(MAX_STEPS_PER_MESSAGE):
            if ctx.state.run is None or ctx.state.run.flow != flow.name:
                return  # an outcome switched flows
            run = ctx.run
            step = self._current(ctx, flow)
            if step is None:
                await self._finish(ctx, flow)
                return
            if run.step != step.name:
                run.step = step.name
                run.failures = 0
                run.wait_deadline = None
            if isinstance(step, Action):
                outcome = await step.run(ctx) if step.run else None
                if not isinstance(outcome, (GoTo, Stay)):
                    self._mark_done(ctx, step.name)
                if await self._apply(ctx, flow, outcome):
                    continue
                return
            if isinstance(step, Wait):
                await self._enter_wait(ctx, flow, step, announce=announce_wait)
                return
            if step.name not in run.history:
                run.history.append(step.name)
            await self._prompt(ctx, flow, step)
            return
        raise RuntimeError(f"flow {flow.name} did not settle (a loop between steps?)")

    async def _apply(self, ctx: Ctx, flow: Flow, outcome: Outcome | None) -> bool:
        """Apply a step's outcome; True means keep advancing this flow."""
        if outcome is None or isinstance(outcome, Next):
            return True
        if isinstance(outcome, GoTo):
            if outcome.error:
                ctx.say(outcome.error, **dict(outcome.params))
            self._clear(ctx, flow, outcome.step)
            return True
        if isinstance(outcome, Stay):
            return False
        if isinstance(outcome, Finish):
            await self._finish(ctx, flow, show_home=outcome.show_home, run_hook=False)
            return False
        if isinstance(outcome, StartFlow):
            if not outcome.resume:
                # the current flow is over; the next one takes its place
                ctx.state.run = None
            await self.start(ctx, outcome.flow, prefill=dict(outcome.prefill), resume=outcome.resume)
            return False
        raise TypeError(f"unknown outcome {outcome!r}")

    async def _finish(self, ctx: Ctx, flow: Flow, *, show_home: bool = True, run_hook: bool = True) -> None:
        if run_hook and flow.on_finish is not None:
            outcome = await flow.on_finish(ctx)
            if isinstance(outcome, StartFlow):
                ctx.state.run = None
                await self.start(ctx, outcome.flow, prefill=dict(outcome.prefill), resume=outcome.resume)
                return
        ctx.state.run = None
        if ctx.state.stack:
            waiting = ctx.state.stack.pop()
            resumed = self.flows.get(waiting.flow)
            if resumed is not None:
                await self._take_up(ctx, resumed, waiting, welcome=False)
                return
        if show_home and flow.next_steps is not None:
            options = list(flow.next_steps(ctx))
            if ctx.state.memory.get(PAUSED):
                options.insert(0, ctx.option("@resume", "engine.nav_resume"))
            options.append(ctx.option("@menu", "engine.nav_menu"))
            ctx.state.last_menu = [o.token for o in options]
            ctx.say("engine.next_steps", options=options)
        elif show_home:
            await self._go_home(ctx, None)

    # ---- input at a step -----------------------------------------------------------------------

    async def _on_text(self, ctx: Ctx, flow: Flow, step: Step, text: str) -> None:
        if isinstance(step, Field):
            await self._answer_field(ctx, flow, step, text)
        elif isinstance(step, Choice):
            options = await self._options(ctx, step)
            picked = _match_option(options, text)
            if picked is None:
                if await self._switch_by_intent(ctx, flow, text):
                    return
                await self._refuse(ctx, flow, step, Invalid("engine.pick_option"))
                return
            ctx.set(f"_label.{step.name}", picked.label)
            await self._store(ctx, flow, step, picked.token)
        elif isinstance(step, Upload):
            if await self._switch_by_intent(ctx, flow, text):
                return
            await self._refuse(ctx, flow, step, Invalid("engine.expected_file", kinds=_kinds(step)))
        elif isinstance(step, Summary):
            if await self._switch_by_intent(ctx, flow, text):
                return
            await self._refuse(ctx, flow, step, Invalid("engine.pick_option"))
        elif isinstance(step, Wait):
            outcome = await step.on_message(ctx, text) if step.on_message else None
            if outcome is None and await self._switch_by_intent(ctx, flow, text):
                return
            await self._after_wait_input(ctx, flow, step, outcome)

    async def _switch_by_intent(self, ctx: Ctx, flow: Flow, text: str) -> bool:
        """Start the process the text asks for, putting the current one aside (resumable)."""
        target = self.intents(text) if self.intents is not None else None
        if target is None:
            return False
        name, _, arg = target.partition(":")
        if name == flow.name or name not in self.flows:
            return False
        self._pause_current(ctx)
        await self.start(ctx, name, prefill={"_arg": arg} if arg else None)
        return True

    async def _after_wait_input(self, ctx: Ctx, flow: Flow, step: Wait, outcome: Outcome | None) -> None:
        """What the user wrote or tapped while waiting: ``None`` keeps waiting (the status is
        shown again); ``Next`` means the user's action ended the wait (it is done)."""
        if outcome is None:
            await self._prompt(ctx, flow, step)
            return
        if isinstance(outcome, Next):
            ctx.run.wait_deadline = None
            self._mark_done(ctx, step.name)
        if await self._apply(ctx, flow, outcome):
            await self._advance(ctx, flow)

    async def _answer_field(self, ctx: Ctx, flow: Flow, step: Field, text: str) -> None:
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
            await self._refuse(ctx, flow, step, exc)
            return
        await self._store(ctx, flow, step, value)

    async def _on_option(self, ctx: Ctx, flow: Flow, step: Step, value: str) -> None:
        if isinstance(step, Summary):
            if value in {"edit", "review"}:
                # 修改 opens the list of answers; 返回核对 goes back to the card
                if value == "edit":
                    ctx.run.answers[SUMMARY_PICK] = True
                else:
                    ctx.run.answers.pop(SUMMARY_PICK, None)
                await self._prompt(ctx, flow, step)
                return
            ctx.run.answers.pop(SUMMARY_PICK, None)
            if value == "ok":
                self._mark_done(ctx, step.name)
                await self._advance(ctx, flow)
            elif value.startswith("edit:") and flow.has_step(value[5:]):
                field_name = value[5:]
                self._clear(ctx, flow, field_name, keep_previous=True)
                ctx.run.editing = True
                await self._advance(ctx, flow)
            else:
                ctx.say("engine.stale_button")
                await self._prompt(ctx, flow, step)
        elif isinstance(step, Upload) and value == "done":
            files = ctx.answers.get(f"_files.{step.name}", [])
            if len(files) < step.min_files:
                await self._refuse(ctx, flow, step, Invalid("engine.need_more_files", count=step.min_files))
                return
            await self._store(ctx, flow, step, files)
        elif isinstance(step, Wait):
            outcome = await step.on_option(ctx, value) if step.on_option else None
            await self._after_wait_input(ctx, flow, step, outcome)
        elif isinstance(step, Field):
            await self._answer_field(ctx, flow, step, value)
        elif isinstance(step, Choice):
            options = await self._options(ctx, step)
            picked = next((o for o in options if o.token == value), None)
            if picked is None:
                ctx.say("engine.stale_button")
                await self._prompt(ctx, flow, step)
                return
            ctx.set(f"_label.{step.name}", picked.label)
            await self._store(ctx, flow, step, value)
        else:
            ctx.say("engine.stale_button")
            await self._prompt(ctx, flow, step)

    async def _on_file(self, ctx: Ctx, flow: Flow, step: Step, file: FileRef) -> None:
        if not isinstance(step, Upload):
            await self._refuse(ctx, flow, step, Invalid("engine.expected_text"))
            return
        try:
            if file.size > step.max_bytes:
                raise Invalid("engine.file_too_large", limit=_megabytes(step.max_bytes), kinds=_kinds(step))
            # The declared type is the sender's claim; the content decides.
            kind = sniff((await ctx.media.get(file.media_id))[:16])
            if kind not in step.accept:
                raise Invalid("engine.file_wrong_kind", kinds=_kinds(step), limit=_megabytes(step.max_bytes))
        except Invalid as exc:
            await self._refuse(ctx, flow, step, exc)
            return
        checked = FileRef(file.media_id, file.filename, kind, file.size)
        key = f"_files.{step.name}"
        files = [f for f in ctx.answers.get(key, []) if f["media_id"] != checked.media_id]
        files.append(checked.to_dict())
        ctx.set(key, files)
        if len(files) >= step.max_files:
            ctx.answers.pop(key, None)
            await self._store(ctx, flow, step, files)
            return
        ctx.say("engine.file_received", count=len(files), max=step.max_files)
        await self._prompt(ctx, flow, step)

    async def _store(self, ctx: Ctx, flow: Flow, step: Step, value: Any) -> None:
        # A new answer invalidates whatever was derived from the old one.
        if step.name in ctx.answers and ctx.answers[step.name] != value:
            self._clear(ctx, flow, step.name)
        else:
            for dependent in flow.dependents_of(step.name):
                if ctx.run.editing:
                    self._clear(ctx, flow, dependent)
        ctx.set(step.name, value)
        ctx.run.answers.pop(PREVIOUS + step.name, None)
        ctx.run.answers.pop(SUMMARY_PICK, None)
        ctx.run.failures = 0
        ctx.run.editing = False
        await self._advance(ctx, flow)

    async def _refuse(self, ctx: Ctx, flow: Flow, step: Step, exc: Invalid) -> None:
        ctx.run.failures += 1
        ctx.say(exc.key, **exc.params)
        if ctx.run.failures >= FAILURES_BEFORE_HUMAN:
            ctx.say("engine.offer_human", options=[ctx.option("@human", "engine.nav_human")])
        await self._prompt(ctx, flow, step)

    # ---- waits ----------------------------------------------------------------------------------

    async def _enter_wait(self, ctx: Ctx, flow: Flow, step: Wait, *, announce: bool = False) -> None:
        run = ctx.run
        entered = f"_entered.{step.name}"
        entered_before = bool(run.answers.get(entered))
        if not entered_before:
            run.answers[entered] = True
            if step.timeout is not None:
                run.wait_deadline = (ctx.now + step.timeout).isoformat()
            if step.on_enter is not None:
                outcome = await step.on_enter(ctx)
                if outcome is not None and not isinstance(outcome, Stay):
                    if await self._apply(ctx, flow, outcome):
                        await self._advance(ctx, flow)
                    return
            await self._prompt(ctx, flow, step)
        # Events that arrived while the flow was put aside are handled now, in order.
        queued = run.answers.pop(QUEUED, [])
        for item in queued:
            event = ExternalEvent(item["event_id"], item["type"], item["data"])
            if step.accepts and step.accepts(ctx, event):
                await self._resolve_wait(ctx, flow, step, event)
                return
        if announce and entered_before:
            await self._prompt(ctx, flow, step)

    async def _resolve_wait(self, ctx: Ctx, flow: Flow, step: Wait, event: ExternalEvent) -> None:
        outcome = await step.on_event(ctx, event) if step.on_event else None
        if isinstance(outcome, Stay):
            return
        ctx.run.wait_deadline = None
        if outcome is None or isinstance(outcome, Next):
            self._mark_done(ctx, step.name)
        if await self._apply(ctx, flow, outcome):
            await self._advance(ctx, flow)

    async def _on_timeout(self, ctx: Ctx, event: ExternalEvent) -> bool:
        run = ctx.state.run
        if run is None or run.run_id != event.data.get("run_id") or run.step != event.data.get("step"):
            return True  # the wait is over already: nothing to do
        flow = self._flow_of(ctx)
        step = self._current(ctx, flow) if flow else None
        if flow is None or not isinstance(step, Wait):
            return True
        run.wait_deadline = None
        outcome = await step.on_timeout(ctx) if step.on_timeout else None
        if outcome is None:
            # No handler of its own: the process is put aside with every answer kept, and the
            # user can resume it from the menu (what the message promises).
            ctx.say("engine.wait_timed_out", process=ctx.t(flow.title))
            run.answers.pop(f"_entered.{step.name}", None)
            self._pause_current(ctx)
            await self._go_home(ctx, None)
            return True
        if await self._apply(ctx, flow, outcome):
            await self._advance(ctx, flow)
        return True

    def _run_waits_for(self, ctx: Ctx, run: FlowRun, event: ExternalEvent) -> bool:
        flow = self.flows.get(run.flow)
        if flow is None:
            return False
        for step in flow.steps:
            if isinstance(step, Wait) and step.applies(run.answers) and not self._is_done(run, step):
                saved = ctx.state.run
                ctx.state.run = run  # ``accepts`` reads the run's answers through ctx
                try:
                    return bool(step.accepts and step.accepts(ctx, event))
                finally:
                    ctx.state.run = saved
        return False

    # ---- prompts and options --------------------------------------------------------------------

    def _token_of(self, ctx: Ctx, inbound: Inbound) -> str | None:
        if inbound.kind is InboundKind.CHOICE:
            return inbound.text
        if inbound.kind is InboundKind.COMMAND:
            name = inbound.text.lstrip("/").lower()
            return {
                "start": "@menu",
                "menu": "@menu",
                "help": "@help",
                "cancel": "@cancel",
                "human": "@human",
                "back": "@back",
            }.get(name, f"@go:{name}" if name in self.flows else "@menu")
        if inbound.kind is not InboundKind.TEXT:
            return None
        text = clean_text(inbound.text)
        nav = nav_token(text)
        if nav is not None:
            return nav
        # "2" answers the second option of the last prompt that offered options.
        if text.isdigit() and ctx.state.last_menu and not self._expects_text(ctx):
            index = int(text) - 1
            if 0 <= index < len(ctx.state.last_menu):
                return ctx.state.last_menu[index]
        return None

    def _expects_text(self, ctx: Ctx) -> bool:
        if ctx.state.run is None:
            return False
        flow = self.flows.get(ctx.state.run.flow)
        step = self._current(ctx, flow) if flow else None
        return isinstance(step, Field)

    def _scoped(self, ctx: Ctx, flow: Flow, step: Step, token: str) -> str | None:
        """Unwrap a step-scoped token; None when it belongs to another run or step (stale)."""
        parts = token.split(".", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        if int(parts[0]) != ctx.run.run_id or int(parts[1]) != flow.index(step.name):
            return None
        return parts[2]

    def _scope(self, ctx: Ctx, flow: Flow, step: Step, option: Option) -> Option:
        if option.token.startswith("@"):
            return option
        return Option(f"{ctx.run.run_id}.{flow.index(step.name)}.{option.token}", option.label)

    async def _options(self, ctx: Ctx, step: Choice) -> Sequence[Option]:
        if callable(step.options):
            return await step.options(ctx)
        return [
            Option(o.token, ctx.t(o.label) if ctx.t.catalog.has(o.label) else o.label) for o in step.options
        ]

    def _counter(self, ctx: Ctx, flow: Flow, step: Step) -> str:
        """ "Step n/total" that does not jump: a choice not made yet counts as its first option
        (the usual path), answers filled in without asking (a preset seal, a prefill) are not
        steps, and the count ends at the summary: what follows it (payment, waits) is not."""
        answers = dict(ctx.answers)
        for s in flow.steps:
            if isinstance(s, Choice) and s.name not in answers and not callable(s.options) and s.options:
                answers[s.name] = s.options[0].token
        asked = set(ctx.run.history) | {step.name}
        names: list[str] = []
        for s in flow.visible_steps(answers):
            if s.name in ctx.answers and s.name not in asked:
                continue  # filled in for the user: not a question they answer
            names.append(s.name)
            if isinstance(s, Summary):
                break
        if step.name not in names or len(names) < 2:
            return ""
        return ctx.t("engine.step_counter", n=names.index(step.name) + 1, total=len(names))

    def _nav(self, ctx: Ctx, flow: Flow, step: Step) -> list[Option]:
        nav = []
        if any(n != step.name and flow.has_step(n) for n in ctx.run.history):
            nav.append(ctx.option("@back", "engine.nav_back"))
        nav.append(ctx.option("@cancel", "engine.nav_cancel"))
        return nav

    async def _prompt(self, ctx: Ctx, flow: Flow, step: Step) -> None:
        await _PromptBuilder(self, ctx, flow, step).build()


class _PromptBuilder:
    """Builds the text and options of one step's prompt."""

    def __init__(self, interpreter: FlowInterpreter, ctx: Ctx, flow: Flow, step: Step) -> None:
        self.i = interpreter
        self.ctx = ctx
        self.flow = flow
        self.step = step

    async def build(self) -> None:
        ctx, flow, step = self.ctx, self.flow, self.step
        counter = self.i._counter(ctx, flow, step)
        nav = self.i._nav(ctx, flow, step)
        private = ""  # the prompt with the owner's sensitive answers in full, when it shows any
        if isinstance(step, Summary):
            text, private, options = self._summary()
        elif isinstance(step, Wait):
            params = dict(step.status_params(ctx)) if step.status_params else {}
            text = ctx.t(step.status, **params) if step.status else ""
            options = list(await step.options(ctx)) if step.options else []
            nav = [ctx.option("@menu", "engine.nav_menu")]
        elif isinstance(step, Upload):
            text = ctx.t(
                step.prompt, kinds=_kinds(step), limit=_megabytes(step.max_bytes), max=step.max_files
            )
            options = []
            if len(ctx.answers.get(f"_files.{step.name}", [])) >= step.min_files:
                options.append(Option("done", ctx.t("engine.upload_done")))
        elif isinstance(step, Choice):
            params = dict(step.prompt_params(ctx)) if step.prompt_params else {}
            text = ctx.t(step.prompt, **params)
            options = list(await self.i._options(ctx, step))
        elif isinstance(step, Field):
            params = dict(step.prompt_params(ctx)) if step.prompt_params else {}
            text = ctx.t(step.prompt, **params)
            options = list(await step.suggestions(ctx)) if step.suggestions else []
            if PREVIOUS + step.name in ctx.answers:
                before = ctx.answers[PREVIOUS + step.name]
                private = f"{text}\n{ctx.t('engine.current_value', value=display_answer(ctx, step, before, reveal=True))}"
                text = f"{text}\n{ctx.t('engine.current_value', value=display_answer(ctx, step, before))}"
        else:
            return
        if counter:
            text = f"{counter} {text}"
            private = f"{counter} {private}" if private else ""
        scoped = [self.i._scope(ctx, flow, step, o) for o in options] + nav
        ctx.state.last_menu = [o.token for o in scoped]
        if private:
            ctx.say_private(private, text, options=scoped)
        elif text or scoped:
            ctx.say_text(text, options=scoped)

    def _summary(self) -> tuple[str, str, list[Option]]:
        """The card to check before submitting: the answers in their groups, in full for the
        owner (``private``) and masked for everything kept (``text``); one primary 确认 and one
        修改 that opens the list of answers."""
        ctx, step = self.ctx, self.step
        assert isinstance(step, Summary)
        answered = self._answered()
        editable = [s for s in answered if step.editable is None or s.name in step.editable]
        if ctx.answers.get(SUMMARY_PICK) and editable:
            options = [Option(f"edit:{s.name}", self._label(s)) for s in editable]
            options.append(Option("review", ctx.t("engine.summary_review")))
            text = ctx.t("engine.summary_pick")
            return text, "", options
        title = ctx.t(step.title) if step.title else ctx.t("engine.summary_title")
        masked, full = [title], [title]
        grouped = {name for _, names in step.groups for name in names}
        sections = [
            (ctx.t(heading), [s for s in answered if s.name in names]) for heading, names in step.groups
        ]
        sections.append(("", [s for s in answered if s.name not in grouped]))
        for heading, steps in sections:
            if not steps:
                continue
            if heading:
                masked.append(ctx.t("engine.summary_group", group=heading))
                full.append(masked[-1])
            for s in steps:
                value = ctx.answers[s.name]
                masked.append(f"• {self._label(s)}：{display_answer(ctx, s, value)}")
                full.append(f"• {self._label(s)}：{display_answer(ctx, s, value, reveal=True)}")
        options = [Option("ok", ctx.t("engine.summary_confirm"))]
        if editable:
            options.append(Option("edit", ctx.t("engine.summary_edit_any")))
        text, private = "\n".join(masked), "\n".join(full)
        return text, private if private != text else "", options

    def _answered(self) -> list[Step]:
        ctx, flow, step = self.ctx, self.flow, self.step
        found: list[Step] = []
        for s in flow.steps:
            if s.name == step.name:
                break
            if isinstance(s, (Field, Choice, Upload)) and s.applies(ctx.answers) and s.name in ctx.answers:
                found.append(s)
        return found

    def _label(self, step: Step) -> str:
        return self.ctx.t(getattr(step, "label", "") or getattr(step, "prompt", step.name))


def display_answer(ctx: Ctx, step: Step, value: Any, *, reveal: bool = False) -> str:
    """An answer as shown: ``reveal`` is for the owner checking what they typed (in full);
    otherwise sensitive answers are masked. Secret ones (passwords) are never shown."""
    from bot.engine.secrets_box import mask

    if isinstance(step, Field):
        if step.secret:
            return "******"
        shown = step.display(value)
        return mask(shown) if step.sensitive and not reveal else shown
    if isinstance(step, Upload):
        return ctx.t("engine.files_count", count=len(value))
    if isinstance(step, Choice):
        return str(ctx.answers.get(f"_label.{step.name}", value))
    return str(value)


def _match_option(options: Sequence[Option], text: str) -> Option | None:
    lowered = text.strip().lower()
    for option in options:
        if lowered in (option.label.lower(), option.token.lower()):
            return option
    if lowered.isdigit():
        index = int(lowered) - 1
        if 0 <= index < len(options):
            return options[index]
    return None


def _kinds(step: Upload) -> str:
    names = {"image/jpeg": "JPG", "image/png": "PNG", "application/pdf": "PDF", "image/gif": "GIF"}
    return "/".join(sorted(names.get(k, k) for k in step.accept))


def _megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:g} KB"
    return f"{size / (1024 * 1024):g} MB"


__all__ = ["DONE", "FlowInterpreter", "HomeHandler", "clean_text", "display_answer", "nav_token"]
