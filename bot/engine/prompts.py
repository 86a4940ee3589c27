"""What the user reads at a step: its text, its counter, its answers and navigation buttons.

Every button goes out bound to the prompt (``tokens.bind``): the run and the step visit it was
sent with. Building a prompt reads the run and says it; it changes nothing but ``last_menu``
(the options a bare number answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.engine import progress
from bot.engine.context import Ctx
from bot.engine.flow import Choice, Field, Flow, FlowRegistry, Step, Summary, Upload, Wait
from bot.engine.messages import Option
from bot.engine.secrets_box import mask
from bot.engine.state import FlowRun
from bot.engine.tokens import bind


async def choice_options(ctx: Ctx, step: Choice) -> Sequence[Option]:
    if callable(step.options):
        return await step.options(ctx)
    return [Option(o.token, ctx.t(o.label) if ctx.t.catalog.has(o.label) else o.label) for o in step.options]


def counter(ctx: Ctx, flow: Flow, step: Step) -> str:
    names = [s.name for s in flow.visible_steps(ctx.answers)]
    if step.name not in names or len(names) < 2:
        return ""
    return ctx.t("engine.step_counter", n=names.index(step.name) + 1, total=len(names))


def bound(run: FlowRun, options: Sequence[Option]) -> list[Option]:
    return [Option(bind(run.run_id, run.visit, o.token), o.label) for o in options]


def navigation(ctx: Ctx, flow: Flow, step: Step) -> list[Option]:
    if isinstance(step, Wait):
        return [ctx.option("@menu", "engine.nav_menu")]
    nav = []
    if progress.can_go_back(flow, ctx.run, step):
        nav.append(ctx.option("@back", "engine.nav_back"))
    nav.append(ctx.option("@cancel", "engine.nav_cancel"))
    return nav


async def prompt(ctx: Ctx, flow: Flow, step: Step, flows: FlowRegistry) -> None:
    """Say the step's question (or a Wait's status) with its options and navigation."""
    run = ctx.run
    if run.confirming is not None:
        confirmation(ctx, flow, flows)
        return
    if isinstance(step, Summary):
        text, options = summary(ctx, flow, step)
    elif isinstance(step, Wait):
        params = dict(step.status_params(ctx)) if step.status_params else {}
        text = ctx.t(step.status, **params) if step.status else ""
        options = list(await step.options(ctx)) if step.options else []
    elif isinstance(step, Upload):
        text = ctx.t(step.prompt, kinds=kinds(step), limit=megabytes(step.max_bytes), max=step.max_files)
        options = []
        if len(ctx.answers.get(f"_files.{step.name}", [])) >= step.min_files:
            options.append(Option("done", ctx.t("engine.upload_done")))
    elif isinstance(step, Choice):
        params = dict(step.prompt_params(ctx)) if step.prompt_params else {}
        text = ctx.t(step.prompt, **params)
        options = list(await choice_options(ctx, step))
    elif isinstance(step, Field):
        params = dict(step.prompt_params(ctx)) if step.prompt_params else {}
        text = ctx.t(step.prompt, **params)
        options = list(await step.suggestions(ctx)) if step.suggestions else []
    else:
        return
    shown = counter(ctx, flow, step)
    if shown:
        text = f"{shown} {text}"
    # Global options a step offers (``@go:...``, ``@human``) stay as they are: they never act
    # on this step, so they cannot be stale.
    scoped = [
        o if o.token.startswith("@") else Option(bind(run.run_id, run.visit, o.token), o.label)
        for o in options
    ]
    scoped += bound(run, navigation(ctx, flow, step))
    ctx.state.last_menu = [o.token for o in scoped]
    if text or scoped:
        ctx.say_text(text, options=scoped)


def menu_of_all_flows(ctx: Ctx, flows: FlowRegistry) -> None:
    """Every registered flow as a button, after the drafts to resume."""
    titles = {name: ctx.t(flow.title) for name in flows.names() if (flow := flows.get(name)) is not None}
    options = [
        Option(f"@draft:{name}", ctx.t("engine.from_draft", process=titles.get(name, name)))
        for name in ctx.state.drafts
    ]
    options += [Option(f"@go:{name}", title) for name, title in titles.items()]
    ctx.state.last_menu = [o.token for o in options]
    ctx.say("engine.menu", options=options)


def confirmation(ctx: Ctx, flow: Flow, flows: FlowRegistry) -> None:
    """The question a run asks before going on (really cancel? a process name typed here?)."""
    run = ctx.run
    title = ctx.t(flow.title)
    if run.confirming == "cancel":
        text = ctx.t("engine.cancel_confirm", process=title)
        options = [
            ctx.option("@stay", "engine.cancel_keep"),
            ctx.option("@cancel!", "engine.cancel_really"),
        ]
    else:
        target = (run.confirming or "").removeprefix("switch:")
        other_flow = flows.get(target)
        other = ctx.t(other_flow.title) if other_flow else target
        text = ctx.t("engine.switch_confirm", text=run.pending_text or "", process=other)
        options = [
            ctx.option("@use_text", "engine.switch_use_text", text=run.pending_text or ""),
            ctx.option("@switch", "engine.switch_start", process=other),
        ]
    scoped = bound(run, options)
    ctx.state.last_menu = [o.token for o in scoped]
    ctx.say_text(text, options=scoped)


def summary(ctx: Ctx, flow: Flow, step: Summary) -> tuple[str, list[Option]]:
    lines = [ctx.t(step.title) if step.title else ctx.t("engine.summary_title")]
    options = [Option("ok", ctx.t("engine.summary_confirm"))]
    editable = step.editable
    for s in flow.steps:
        if s.name == step.name:
            break
        if not isinstance(s, (Field, Choice, Upload)) or not s.applies(ctx.answers):
            continue
        if s.name not in ctx.answers:
            continue
        label = ctx.t(s.label or getattr(s, "prompt", s.name))
        lines.append(f"• {label}：{display_answer(ctx, s, ctx.answers[s.name])}")
        if editable is None or s.name in editable:
            options.append(Option(f"edit:{s.name}", ctx.t("engine.summary_edit", field=label)))
    return "\n".join(lines), options


def display_answer(ctx: Ctx, step: Step, value: Any) -> str:
    if isinstance(step, Field):
        if step.secret:
            return "******"
        shown = step.display(value)
        return mask(shown) if step.sensitive else shown
    if isinstance(step, Upload):
        return ctx.t("engine.files_count", count=len(value))
    if isinstance(step, Choice):
        return str(ctx.answers.get(f"_label.{step.name}", value))
    return str(value)


def match_option(options: Sequence[Option], text: str) -> Option | None:
    lowered = text.strip().lower()
    for option in options:
        if lowered in (option.label.lower(), option.token.lower()):
            return option
    if lowered.isdigit():
        index = int(lowered) - 1
        if 0 <= index < len(options):
            return options[index]
    return None


def kinds(step: Upload) -> str:
    names = {"image/jpeg": "JPG", "image/png": "PNG", "application/pdf": "PDF", "image/gif": "GIF"}
    return "/".join(sorted(names.get(k, k) for k in step.accept))


def megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:g} KB"
    return f"{size / (1024 * 1024):g} MB"


__all__ = [
    "choice_options",
    "confirmation",
    "display_answer",
    "kinds",
    "match_option",
    "megabytes",
    "menu_of_all_flows",
    "prompt",
]
