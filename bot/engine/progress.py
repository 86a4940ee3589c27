"""Where a run stands in its flow: pure functions of a ``Flow`` and a ``FlowRun``.

The one rule that makes editing, back, versioned resumption and conditional steps a single
mechanism: the current step is always *the first applicable step that is not done*. An input
step is done when its answer is stored; an Action, a Wait or a Summary when it is marked done.
Changing an answer clears the answers that depend on it, so they become "not done" again; going
back clears the previous answer; an upgrade to a new flow version drops what the new version
no longer asks. Nothing here sees a ``Ctx``, a channel or a store.
"""

from __future__ import annotations

from bot.engine.flow import PREVIOUS, Choice, Field, Flow, Step, Summary, Upload
from bot.engine.state import FlowRun

DONE = "_done"  # answers[DONE]: names of Actions/Waits/Summary that are done
SUMMARY_PICK = "_summary_pick"  # answers[SUMMARY_PICK]: the summary shows the list of answers to edit
INPUTS = (Field, Choice, Upload)  # steps whose stored answer is what makes them done


def is_done(run: FlowRun, step: Step) -> bool:
    if isinstance(step, INPUTS):
        return step.name in run.answers
    return step.name in run.answers.get(DONE, ())


def current(flow: Flow, run: FlowRun) -> Step | None:
    """The first applicable step that is not done; None when the flow is complete."""
    answers = run.answers
    done = answers.get(DONE, ())
    for step in flow.steps:
        if isinstance(step, INPUTS):
            if step.name in answers:
                continue
        elif step.name in done:
            continue
        if step.applies(answers):
            return step
    return None


def mark_done(run: FlowRun, name: str) -> None:
    done = run.answers.setdefault(DONE, [])
    if name not in done:
        done.append(name)


def clear(flow: Flow, run: FlowRun, name: str, *, keep_previous: bool = False) -> None:
    """Forget an answer, everything that depends on it, and every confirmation (a summary
    confirmed before must be confirmed again once something it showed changed).

    ``keep_previous``: the answer is edited from the summary, so it is kept aside
    (``PREVIOUS``) for asking it again to show what it was; only that answer, the ones
    depending on it are void, not "current". A secret (a password) is never kept."""
    if keep_previous and name in run.answers and flow.has_step(name):
        step = flow.step(name)
        if isinstance(step, Field) and not step.secret:
            run.answers[PREVIOUS + name] = run.answers[name]
    done: list[str] = run.answers.get(DONE, [])
    for step_name in {name} | flow.dependents_of(name):
        run.answers.pop(step_name, None)
        if step_name in done:
            done.remove(step_name)
    for step in flow.steps:
        if isinstance(step, Summary) and step.name in done:
            done.remove(step.name)


def previous_input(flow: Flow, run: FlowRun, current_step: Step | None) -> str | None:
    """The input step "back" returns to: the last one asked before the current one."""
    history = [
        n for n in run.history if flow.has_step(n) and (current_step is None or n != current_step.name)
    ]
    return history[-1] if history else None


def go_back(flow: Flow, run: FlowRun, current_step: Step | None) -> bool:
    """Clear the previous answer so it becomes the current step; False at the first step."""
    previous = previous_input(flow, run, current_step)
    if previous is None:
        return False
    history = [
        n for n in run.history if flow.has_step(n) and (current_step is None or n != current_step.name)
    ]
    run.history = history[:-1]
    clear(flow, run, previous)
    return True


def can_go_back(flow: Flow, run: FlowRun, step: Step) -> bool:
    return any(n != step.name and flow.has_step(n) for n in run.history)


def upgrade(flow: Flow, run: FlowRun) -> None:
    """Carry a run saved under another version over to ``flow``: keep the answers the flow
    still asks for and whatever its actions stored (order ids, ...); drop the answers of input
    steps the new version no longer has (``history`` names every input step that was asked).
    The first step not done is where the user continues, and a summary confirmed before is
    confirmed again if the new version asks something new before it."""
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
                isinstance(s, INPUTS) and s.applies(run.answers) and s.name not in run.answers for s in before
            ):
                done.remove(step.name)
    if DONE in run.answers:
        run.answers[DONE] = done
    run.history = [n for n in run.history if n in names]
    run.version = flow.version


def counted(flow: Flow, run: FlowRun, step: Step) -> tuple[int, int] | None:
    """Where ``step`` stands as "step n of total", a count that does not jump: a choice not
    made yet counts as its first option (the usual path), answers filled in without asking (a
    preset seal, a prefill) are not steps, and the count ends at the summary (what follows it,
    payment or waits, is not a question). None when there is nothing worth counting."""
    answers = run.answers
    if flow.conditional:  # which steps show depends on the answers: assume the usual path
        answers = dict(answers)
        for s in flow.steps:
            if isinstance(s, Choice) and s.name not in answers and not callable(s.options) and s.options:
                answers[s.name] = s.options[0].token
    history = run.history
    names: list[str] = []
    for s in flow.visible_steps(answers):
        if s.name in run.answers and s.name != step.name and s.name not in history:
            continue  # filled in for the user: not a question they answer
        names.append(s.name)
        if isinstance(s, Summary):
            break
    if step.name not in names or len(names) < 2:
        return None
    return names.index(step.name) + 1, len(names)


def holds_answers(run: FlowRun) -> bool:
    """Whether cancelling would lose something the user typed, picked or uploaded: an answer
    to a step that was asked (prefilled answers and what actions stored do not count)."""
    return any(name in run.answers or run.answers.get(f"_files.{name}") for name in run.history)


__all__ = [
    "DONE",
    "SUMMARY_PICK",
    "can_go_back",
    "clear",
    "counted",
    "current",
    "go_back",
    "holds_answers",
    "is_done",
    "mark_done",
    "previous_input",
    "upgrade",
]
