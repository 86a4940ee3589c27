"""Interprets declared flows: what an input means at the current step, and what happens next.

Where a run stands is ``bot.engine.progress`` (the current step is the first applicable step
not done); what the user reads is ``bot.engine.prompts``; what a message means before any step
sees it (commands, bound buttons) is ``bot.engine.tokens``. This module walks runs: it starts,
cancels, puts aside and resumes them, runs actions, applies their outcomes and holds waits.

Input at a step is ``bot.engine.step_input``, which reaches the walk only through the ``Runs``
protocol this class implements (``advance``, ``apply``, ``prompt``, ``start``, ...).
"""

# Over 600 lines: the dispatcher that ties the engine's concerns together (input tokens, progress,
# prompts and input at a step live in their own modules); what remains is the run stack and the
# navigation commands, which share one state machine.

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.engine import progress, prompts
from bot.engine.context import Ctx
from bot.engine.flow import (
    Action,
    Field,
    Finish,
    Flow,
    FlowRegistry,
    GoTo,
    Next,
    Outcome,
    StartFlow,
    Stay,
    Step,
    Wait,
)
from bot.engine.messages import ExternalEvent, Inbound, InboundKind, Origin
from bot.engine.progress import DONE
from bot.engine.prompts import display_answer
from bot.engine.state import FlowRun, Owner, PausedRun
from bot.engine.step_input import FAILURES_BEFORE_HUMAN, StepInput, Understanding
from bot.engine.tokens import STEP_COMMANDS, clean_text, nav_token, token_of, unbind

log = logging.getLogger("sealbot.engine")

HomeHandler = Callable[[Ctx, Inbound | None], Awaitable[Outcome | None]]

QUEUED = "_events"  # answers[QUEUED]: events that arrived while this run was put aside
OWNER = "_account"  # answers[OWNER]: the account a run was put aside (or kept as a draft) under
MAX_STEPS_PER_MESSAGE = 60
DRAFT_KEPT = timedelta(days=7)  # a cancelled run that held answers can be resumed this long


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
        understanding = home if isinstance(home, Understanding) else None
        self.input = StepInput(self, intents=intents, understanding=understanding)

    async def _menu_of_all_flows(self, ctx: Ctx, inbound: Inbound | None) -> Outcome | None:
        """The fallback home; the handlers package installs the real one (menu and intents)."""
        prompts.menu_of_all_flows(ctx, self.flows)
        return None

    # ---- entry points -------------------------------------------------------------------------

    async def on_user_input(self, ctx: Ctx, inbound: Inbound) -> None:
        token = self._token_of(ctx, inbound)
        run = ctx.state.run
        if token is not None:
            bound = unbind(token)
            if bound is not None:
                if run is None or bound.run_id != run.run_id or bound.visit != run.visit:
                    await self.stale(ctx)  # sent with an earlier prompt: never acts now
                    return
                token = bound.token
                if token.startswith("@"):
                    await self._command(ctx, token)
                    return
            elif token.startswith("@"):
                if inbound.kind is InboundKind.CHOICE and token in STEP_COMMANDS:
                    await self.stale(ctx)  # a step's button sent without its prompt's name
                    return
                await self._command(ctx, token)
                return
            else:
                await self.stale(ctx)
                return
        if run is None:
            await self._go_home(ctx, inbound)
            return
        asked = run.step
        upgraded = run.version
        flow = self._flow_of(ctx)
        if flow is None:
            await self._go_home(ctx, None)
            return
        step = progress.current(flow, run)
        if step is None:
            await self.advance(ctx, flow)
            return
        if upgraded != flow.version and step.name != asked:
            # A deploy changed the process under this conversation and the question the user
            # is answering is no longer the one to ask: say so and ask the right one, rather
            # than file the answer under another question.
            ctx.say("engine.flow_updated", process=ctx.t(flow.title))
            await self.advance(ctx, flow, announce_wait=True)
            return
        # Anything but an answer to a pending question (cancel? switch?) sets it aside.
        run.confirming = None
        run.pending_text = None
        if token is not None:
            await self.input.on_option(ctx, flow, step, token)
            return
        if inbound.kind is InboundKind.FILE and inbound.file is not None:
            await self.input.on_file(ctx, flow, step, inbound.file)
            return
        await self.input.on_text(ctx, flow, step, clean_text(inbound.text))

    async def on_event(self, ctx: Ctx, event: ExternalEvent) -> bool:
        """Returns whether a flow consumed the event (a waiting step, or a timeout)."""
        run = ctx.state.run
        if event.type == self.TIMEOUT_EVENT:
            return await self._on_timeout(ctx, event)
        if run is not None:
            flow = self._flow_of(ctx)
            step = progress.current(flow, run) if flow else None
            if flow and isinstance(step, Wait) and step.accepts and step.accepts(ctx, event):
                await self._resolve_wait(ctx, flow, step, event)
                return True
        # A flow the user put aside may be waiting for it: keep it for when they come back
        # (the generic status push still tells the user now).
        item = {"event_id": event.event_id, "type": event.type, "data": event.data}
        for stacked in [*ctx.state.stack, *(p.run for p in ctx.state.paused.values())]:
            if self._run_waits_for(ctx, stacked, event):
                stacked.answers.setdefault(QUEUED, []).append(item)
                return False
        return False

    def would_consume(self, ctx: Ctx, event: ExternalEvent) -> bool:
        state = ctx.state
        runs = [
            r for r in [state.run, *state.stack, *(p.run for p in state.paused.values())] if r is not None
        ]
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
        if isinstance(step, Wait):
            return step.sensitive
        return isinstance(step, Field) and (step.sensitive or step.secret)

    async def reprompt(self, ctx: Ctx) -> None:
        if ctx.state.run is None:
            return
        flow = self._flow_of(ctx)
        if flow is None:
            return
        step = progress.current(flow, ctx.run)
        if step is not None and (step.asks_user or isinstance(step, Wait)):
            await self.prompt(ctx, flow, step)

    async def stale(self, ctx: Ctx) -> None:
        ctx.say("engine.stale_button")
        if ctx.state.run is not None:
            await self.reprompt(ctx)
        else:
            await self._go_home(ctx, None)

    # ---- commands -------------------------------------------------------------------------------

    async def _command(self, ctx: Ctx, token: str) -> None:
        run = ctx.state.run
        if token == "@cancel":
            await self._ask_cancel(ctx)
        elif token == "@cancel!":
            if run is not None and run.confirming == "cancel":
                await self._cancel(ctx)
            else:
                await self.stale(ctx)
        elif token in ("@stay", "@use_text", "@switch"):
            await self._answer_confirmation(ctx, token)
        elif token == "@back":
            await self._back(ctx)
        elif token == "@help":
            flow = self._flow_of(ctx) if run else None
            ctx.say(flow.help if flow and flow.help else "engine.help")
            await self.reprompt(ctx)
        elif token == "@human":
            ctx.state.owner = Owner.WAITING
            # The owner is no longer the bot when this leaves, so a bot message would be held:
            # the confirmation is a system notice, which reaches the user whoever owns the chat.
            ctx.say_text(ctx.t("engine.handoff_waiting"), origin=Origin.SYSTEM)
        elif token == "@menu":
            self.pause_current(ctx)
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
        elif token.startswith("@draft:"):
            await self._resume_draft(ctx, token.removeprefix("@draft:"))
        elif token == "@resume":
            await self._resume_latest(ctx)
        else:
            await self.stale(ctx)

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
                self.pause_current(ctx)
            ctx.state.run = None
        paused = ctx.state.paused.pop(name, None)
        if paused is not None and not prefill:
            ctx.state.run = paused.run
            await self._resume(ctx, flow)
            return
        if ctx.state.run is not None and ctx.state.run.flow == name and not prefill:
            await self.reprompt(ctx)
            return
        run = FlowRun(flow=name, version=flow.version, run_id=ctx.state.next_run_id(), step="")
        run.answers.update(prefill or {})
        if self._needs_login(ctx, flow):
            ctx.state.stack.append(run)
            ctx.say("engine.login_first", process=ctx.t(flow.title))
            await self.start(ctx, "login")
            return
        ctx.state.run = run
        await self.advance(ctx, flow)

    def _needs_login(self, ctx: Ctx, flow: Flow) -> bool:
        return flow.requires_login and not ctx.logged_in and self.flows.get("login") is not None

    async def _resume(self, ctx: Ctx, flow: Flow) -> None:
        """Continue ``ctx.state.run`` (taken back from the shelf or the drafts) where it stands;
        a process that needs a login asks for one first (logged out since: the login flow's
        end takes this run up again) and continues after it."""
        run = ctx.run
        progress.upgrade(flow, run)
        run.confirming = None
        run.pending_text = None
        if self._needs_login(ctx, flow):
            ctx.state.stack.append(run)
            ctx.state.run = None
            ctx.say("engine.login_to_resume", process=ctx.t(flow.title))
            await self.start(ctx, "login")
            return
        ctx.state.run = None
        await self._take_up(ctx, flow, run, welcome=True)

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
        progress.upgrade(flow, run)
        if flow.on_resume is not None:
            outcome = await flow.on_resume(ctx)
            if isinstance(outcome, StartFlow) and outcome.flow == flow.name:
                ctx.state.run = None
                await self.start(ctx, flow.name, prefill=dict(outcome.prefill))
                return
            if outcome is not None and not isinstance(outcome, Next):
                if await self.apply(ctx, flow, outcome):
                    await self.advance(ctx, flow)
                return
        if welcome:
            ctx.say("engine.resumed", process=ctx.t(flow.title))
        await self.advance(ctx, flow, announce_wait=True)

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

    async def _ask_cancel(self, ctx: Ctx) -> None:
        """Cancelling a run that holds answers asks first; one with nothing to lose ends now."""
        run = ctx.state.run
        if run is None:
            await self._go_home(ctx, None)
            return
        flow = self._flow_of(ctx)
        if flow is None:
            await self._go_home(ctx, None)
            return
        if not progress.holds_answers(run):
            await self._cancel(ctx)
            return
        run.confirming = "cancel"
        run.pending_text = None
        prompts.confirmation(ctx, flow, self.flows)

    async def _cancel(self, ctx: Ctx) -> None:
        run = ctx.state.run
        if run is None:
            await self._go_home(ctx, None)
            return
        flow = self.flows.get(run.flow)
        run.confirming = None
        keep = flow is not None and flow.on_cancel is None and progress.holds_answers(run)
        if flow is not None and flow.on_cancel is not None:
            # The flow undoes what it started on the platform, so its answers cannot be resumed.
            ctx.flow = flow
            await flow.on_cancel(ctx)
        ctx.state.run = None
        ctx.state.stack.clear()
        title = ctx.t(flow.title) if flow else run.flow
        if keep:
            self._mark_owner(ctx, run)
            ctx.state.drafts.pop(run.flow, None)
            ctx.state.drafts[run.flow] = PausedRun(run, ctx.now.isoformat())
            ctx.say("engine.cancelled_draft", process=title, days=DRAFT_KEPT.days)
        else:
            ctx.say("engine.cancelled", process=title)
        await self._go_home(ctx, None)

    async def _answer_confirmation(self, ctx: Ctx, token: str) -> None:
        run = ctx.state.run
        pending = run.confirming if run is not None else None
        if run is None or pending is None or (token != "@stay" and not pending.startswith("switch:")):
            await self.stale(ctx)
            return
        text = run.pending_text or ""
        run.confirming = None
        run.pending_text = None
        flow = self._flow_of(ctx)
        if flow is None:
            await self._go_home(ctx, None)
            return
        step = progress.current(flow, run)
        if token == "@switch":
            self.pause_current(ctx)
            await self.start(ctx, pending.removeprefix("switch:"))
        elif token == "@use_text" and isinstance(step, Field):
            await self.input.answer_field(ctx, flow, step, text)
        elif step is not None:
            await self.prompt(ctx, flow, step)

    async def _back(self, ctx: Ctx) -> None:
        run = ctx.state.run
        flow = self._flow_of(ctx) if run else None
        if run is None or flow is None:
            await self._go_home(ctx, None)
            return
        run.confirming = None
        if not progress.go_back(flow, run, progress.current(flow, run)):
            ctx.say("engine.at_first_step")
            await self.reprompt(ctx)
            return
        await self.advance(ctx, flow)

    # ---- the home menu, runs put aside and drafts ------------------------------------------------

    async def _go_home(self, ctx: Ctx, inbound: Inbound | None) -> None:
        self._forget_old_drafts(ctx)
        outcome = await self.home(ctx, inbound)
        if isinstance(outcome, StartFlow):
            await self.start(ctx, outcome.flow, prefill=dict(outcome.prefill), resume=outcome.resume)

    def pause_current(self, ctx: Ctx) -> None:
        run = ctx.state.run
        if run is None:
            return
        run.confirming = None
        run.pending_text = None
        self._mark_owner(ctx, run)
        ctx.state.put_aside(run, ctx.now)
        ctx.state.run = None

    @staticmethod
    def _mark_owner(ctx: Ctx, run: FlowRun) -> None:
        """Whose answers these are: another account logging in on this chat never sees them."""
        if ctx.session is not None:
            run.answers[OWNER] = ctx.session.account_id

    async def _resume_latest(self, ctx: Ctx) -> None:
        if not ctx.state.paused:
            await self._go_home(ctx, None)
            return
        await self.start(ctx, list(ctx.state.paused)[-1])

    def _forget_old_drafts(self, ctx: Ctx) -> None:
        drafts = ctx.state.drafts
        for name in [n for n, d in drafts.items() if (d.age(ctx.now) or timedelta()) > DRAFT_KEPT]:
            del drafts[name]

    async def _resume_draft(self, ctx: Ctx, name: str) -> None:
        self._forget_old_drafts(ctx)
        draft = ctx.state.drafts.pop(name, None)
        flow = self.flows.get(name)
        if draft is None or flow is None:
            ctx.say("engine.draft_gone")
            if ctx.state.run is not None:
                await self.reprompt(ctx)
            else:
                await self._go_home(ctx, None)
            return
        self.pause_current(ctx)  # whatever runs now is put aside (resumable), the draft wins
        ctx.state.run = draft.run
        await self._resume(ctx, flow)

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
            progress.upgrade(flow, run)
        ctx.flow = flow
        return flow

    async def advance(self, ctx: Ctx, flow: Flow, *, announce_wait: bool = False) -> None:
        """Run actions and stop at the next step that needs the user or an event.

        ``announce_wait``: the user comes back to this run (resumed from the menu, returned
        to after another flow), so a Wait entered earlier says again what it awaits."""
        for _ in range(MAX_STEPS_PER_MESSAGE):
            if ctx.state.run is None or ctx.state.run.flow != flow.name:
                return  # an outcome switched flows
            run = ctx.run
            step = progress.current(flow, run)
            if step is None:
                await self._finish(ctx, flow)
                return
            if run.step != step.name:
                run.step = step.name
                run.visit += 1  # a new prompt: buttons of the earlier ones are stale now
                run.failures = 0
                run.wait_deadline = None
            if isinstance(step, Action):
                outcome = await step.run(ctx) if step.run else None
                if not isinstance(outcome, (GoTo, Stay)):
                    progress.mark_done(run, step.name)
                if await self.apply(ctx, flow, outcome):
                    continue
                return
            if isinstance(step, Wait):
                await self._enter_wait(ctx, flow, step, announce=announce_wait)
                return
            if step.name not in run.history:
                run.history.append(step.name)
            await self.prompt(ctx, flow, step)
            return
        raise RuntimeError(f"flow {flow.name} did not settle (a loop between steps?)")

    async def apply(self, ctx: Ctx, flow: Flow, outcome: Outcome | None) -> bool:
        """Apply a step's outcome; True means keep advancing this flow."""
        if outcome is None or isinstance(outcome, Next):
            return True
        if isinstance(outcome, GoTo):
            if outcome.error:
                ctx.say(outcome.error, **dict(outcome.params))
            progress.clear(flow, ctx.run, outcome.step)
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
            prompts.next_steps(ctx, flow.next_steps(ctx))
        elif show_home:
            await self._go_home(ctx, None)

    async def prompt(self, ctx: Ctx, flow: Flow, step: Step) -> None:
        await prompts.prompt(ctx, flow, step, self.flows)

    # ---- what an inbound message means --------------------------------------------------------

    def _token_of(self, ctx: Ctx, inbound: Inbound) -> str | None:
        return token_of(
            ctx.state, inbound, is_flow=self.flows.__contains__, expects_text=lambda: self._expects_text(ctx)
        )

    def _expects_text(self, ctx: Ctx) -> bool:
        run = ctx.state.run
        if run is None or run.confirming is not None:
            return False
        flow = self.flows.get(run.flow)
        step = progress.current(flow, run) if flow else None
        return isinstance(step, Field)

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
                    if await self.apply(ctx, flow, outcome):
                        await self.advance(ctx, flow)
                    return
            await self.prompt(ctx, flow, step)
        # Events that arrived while the flow was put aside are handled now, in order, until
        # one moves the run on: news that keeps it waiting (a stage) must not hide a later one
        # that ends the wait, and the wait's status is said once, after them.
        queued = run.answers.pop(QUEUED, [])
        reprompt = announce and entered_before
        for item in queued:
            event = ExternalEvent(item["event_id"], item["type"], item["data"])
            if step.accepts and step.accepts(ctx, event):
                stayed = await self._resolve_wait(ctx, flow, step, event, defer_prompt=True)
                if stayed is None:
                    return
                reprompt = reprompt or stayed.reprompt
        if reprompt:
            await self.prompt(ctx, flow, step)

    async def _resolve_wait(
        self, ctx: Ctx, flow: Flow, step: Wait, event: ExternalEvent, *, defer_prompt: bool = False
    ) -> Stay | None:
        """The ``Stay`` when the run keeps waiting (its prompt left to the caller when
        ``defer_prompt``), else None: the run moved on."""
        outcome = await step.on_event(ctx, event) if step.on_event else None
        if isinstance(outcome, Stay):
            if outcome.reprompt and not defer_prompt:
                await self.prompt(ctx, flow, step)
            return outcome
        ctx.run.wait_deadline = None
        if outcome is None or isinstance(outcome, Next):
            progress.mark_done(ctx.run, step.name)
        if await self.apply(ctx, flow, outcome):
            await self.advance(ctx, flow)
        return None

    async def _on_timeout(self, ctx: Ctx, event: ExternalEvent) -> bool:
        run = ctx.state.run
        if run is None or run.run_id != event.data.get("run_id") or run.step != event.data.get("step"):
            return True  # the wait is over already: nothing to do
        flow = self._flow_of(ctx)
        step = progress.current(flow, run) if flow else None
        if flow is None or not isinstance(step, Wait):
            return True
        run.wait_deadline = None
        outcome = await step.on_timeout(ctx) if step.on_timeout else None
        if outcome is None:
            # No handler of its own: the process is put aside with every answer kept, and the
            # user can resume it from the menu (what the message promises).
            ctx.say("engine.wait_timed_out", process=ctx.t(flow.title))
            run.answers.pop(f"_entered.{step.name}", None)
            self.pause_current(ctx)
            await self._go_home(ctx, None)
            return True
        if isinstance(outcome, Stay) and outcome.reprompt:
            await self.prompt(ctx, flow, step)
            return True
        if await self.apply(ctx, flow, outcome):
            await self.advance(ctx, flow)
        return True

    def _run_waits_for(self, ctx: Ctx, run: FlowRun, event: ExternalEvent) -> bool:
        flow = self.flows.get(run.flow)
        if flow is None:
            return False
        for step in flow.steps:
            if isinstance(step, Wait) and step.applies(run.answers) and not progress.is_done(run, step):
                # ``accepts`` reads the run's answers through a view of ctx on that run
                return bool(step.accepts and step.accepts(ctx.viewing(run), event))
        return False


__all__ = [
    "DONE",
    "FAILURES_BEFORE_HUMAN",
    "FlowInterpreter",
    "HomeHandler",
    "Understanding",
    "clean_text",
    "display_answer",
    "nav_token",
]
