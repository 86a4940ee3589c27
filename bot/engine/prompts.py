"""What the user reads at a step: its text, its counter, its answers and navigation buttons.

Every button goes out bound to the prompt (``tokens.bind``): the run and the step visit it was
sent with. Building a prompt reads the run and says it; it changes nothing but ``last_menu``
(the options a bare number answers).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from bot.engine import progress
from bot.engine.context import Ctx
from bot.engine.flow import PREVIOUS, Choice, Field, Flow, FlowRegistry, Step, Summary, Upload, Wait
from bot.engine.i18n import Catalog
from bot.engine.messages import Option
from bot.engine.secrets_box import mask, mask_text
from bot.engine.state import FlowRun
from bot.engine.tokens import bind


async def choice_options(ctx: Ctx, step: Choice) -> Sequence[Option]:
    if callable(step.options):
        return await step.options(ctx)
    return [Option(o.token, ctx.t(o.label) if ctx.t.catalog.has(o.label) else o.label) for o in step.options]


SUGGESTION = "ref:"  # a suggestion button names its place in the list, never the value


async def suggestion_refs(ctx: Ctx, step: Field, *, reveal: bool = False) -> list[Option]:
    """A Field's suggestions as buttons that carry a reference, not the value (a phone number
    would otherwise sit in the outbox and the channel's payloads); a sensitive field's label
    is masked too, unless ``reveal`` (the labels the owner alone reads, sealed)."""
    if step.suggestions is None:
        return []
    return [
        Option(f"{SUGGESTION}{i}", mask_text(o.label) if step.sensitive and not reveal else o.label)
        for i, o in enumerate(await step.suggestions(ctx))
    ]


async def suggested_value(ctx: Ctx, step: Field, value: str) -> str:
    """The value a suggestion button stands for (computed again from the same answers)."""
    if not value.startswith(SUGGESTION) or step.suggestions is None:
        return value
    index = value[len(SUGGESTION) :]
    options = list(await step.suggestions(ctx))
    if not index.isdigit() or int(index) >= len(options):
        return ""  # a stale button: refused as an empty answer, asked again
    return options[int(index)].token


def counter(ctx: Ctx, flow: Flow, step: Step) -> str:
    """ "Step n/total" (``progress.counted``: a count that does not jump)."""
    place = progress.counted(flow, ctx.run, step)
    if place is None:
        return ""
    return _counter_text(ctx.t.catalog, ctx.t.locale, *place)


@functools.lru_cache(maxsize=1024)
def _counter_text(catalog: Catalog, locale: str, n: int, total: int) -> str:
    # Said with every question: formatted once per catalog, locale and place (the catalog is
    # a key by identity; a few flows of a dozen steps in two locales are a few hundred texts).
    return catalog.get(locale, "engine.step_counter", n=n, total=total)


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
    private = ""  # the prompt with the owner's sensitive answers in full, when it shows any
    full_labels: dict[str, str] = {}  # option token -> its label in full, for the owner alone
    if isinstance(step, Summary):
        text, private, options = summary(ctx, flow, step)
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
        options = await suggestion_refs(ctx, step)
        if step.sensitive:
            full_labels = {o.token: o.label for o in await suggestion_refs(ctx, step, reveal=True)}
        if PREVIOUS + step.name in ctx.answers:
            # Edited from the summary: show what it was (in full to the owner alone).
            before = ctx.answers[PREVIOUS + step.name]
            shown_full = display_answer(ctx, step, before, reveal=True)
            private = f"{text}\n{ctx.t('engine.current_value', value=shown_full)}"
            text = f"{text}\n{ctx.t('engine.current_value', value=display_answer(ctx, step, before))}"
    else:
        return
    shown = counter(ctx, flow, step)
    if shown:
        text = f"{shown} {text}"
        private = f"{shown} {private}" if private else ""
    # Global options a step offers (``@go:...``, ``@human``) stay as they are: they never act
    # on this step, so they cannot be stale.
    scoped = [
        o if o.token.startswith("@") else Option(bind(run.run_id, run.visit, o.token), o.label)
        for o in options
    ]
    labels = [full_labels.get(o.token, o.label) for o in options]
    scoped += bound(run, navigation(ctx, flow, step))
    labels += [o.label for o in scoped[len(labels) :]]
    ctx.state.last_menu = [o.token for o in scoped]
    if full_labels and labels != [o.label for o in scoped]:
        # Suggestions of a sensitive field (使用 <the owner's phone>): in full for the owner,
        # sealed; the outbox, transcripts and the history keep the masked labels.
        ctx.say_private(private or text, text, options=scoped, private_labels=labels)
    elif private and private != text:
        ctx.say_private(private, text, options=scoped)
    elif text or scoped:
        ctx.say_text(text, options=scoped)


def next_steps(ctx: Ctx, suggested: Sequence[Option]) -> None:
    """After a process ends: the two or three things that make sense next (and the run put
    aside, if any, to continue), with a "main menu" button, instead of the whole menu."""
    options = list(suggested)
    if ctx.state.paused:
        options.insert(0, ctx.option("@resume", "engine.nav_resume"))
    options.append(ctx.option("@menu", "engine.nav_menu"))
    ctx.state.last_menu = [o.token for o in options]
    ctx.say("engine.next_steps", options=options)


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


def summary(ctx: Ctx, flow: Flow, step: Summary) -> tuple[str, str, list[Option]]:
    """The card to check before submitting: the answers in their groups, masked for
    everything kept (``text``) and in full for the owner (``private``, "" when the same); one
    primary 确认 and one 修改 that opens the list of answers (``progress.SUMMARY_PICK``)."""
    answered = _answered(ctx, flow, step)
    editable = [s for s in answered if step.editable is None or s.name in step.editable]
    if ctx.answers.get(progress.SUMMARY_PICK) and editable:
        options = [Option(f"edit:{s.name}", _label(ctx, s)) for s in editable]
        options.append(Option("review", ctx.t("engine.summary_review")))
        return ctx.t("engine.summary_pick"), "", options
    title = ctx.t(step.title) if step.title else ctx.t("engine.summary_title")
    masked, full = [title], [title]
    grouped = {name for _, names in step.groups for name in names}
    sections = [(ctx.t(heading), [s for s in answered if s.name in names]) for heading, names in step.groups]
    sections.append(("", [s for s in answered if s.name not in grouped]))
    for heading, steps in sections:
        if not steps:
            continue
        if heading:
            masked.append(ctx.t("engine.summary_group", group=heading))
            full.append(masked[-1])
        for s in steps:
            value = ctx.answers[s.name]
            masked.append(f"• {_label(ctx, s)}：{display_answer(ctx, s, value)}")
            full.append(f"• {_label(ctx, s)}：{display_answer(ctx, s, value, reveal=True)}")
    options = [Option("ok", ctx.t("engine.summary_confirm"))]
    if editable:
        options.append(Option("edit", ctx.t("engine.summary_edit_any")))
    text, private = "\n".join(masked), "\n".join(full)
    return text, private if private != text else "", options


def _answered(ctx: Ctx, flow: Flow, step: Summary) -> list[Step]:
    """The answered input steps before the summary, in flow order."""
    found: list[Step] = []
    for s in flow.steps:
        if s.name == step.name:
            break
        if isinstance(s, (Field, Choice, Upload)) and s.applies(ctx.answers) and s.name in ctx.answers:
            found.append(s)
    return found


def _label(ctx: Ctx, step: Step) -> str:
    return ctx.t(getattr(step, "label", "") or getattr(step, "prompt", step.name))


def display_answer(ctx: Ctx, step: Step, value: Any, *, reveal: bool = False) -> str:
    """An answer as shown: ``reveal`` is for the owner checking what they typed (in full);
    otherwise sensitive answers are masked. Secret ones (passwords) are never shown."""
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
    "next_steps",
    "prompt",
]
