"""The progress rule on its own: the current step is the first applicable step not done.

Plain flows and runs, no ``Ctx``, no store: back, edit and version upgrades are this one rule.
"""

from __future__ import annotations

from bot.engine import progress
from bot.engine.flow import Action, Choice, Field, Flow, Summary, Upload, Wait
from bot.engine.messages import Option
from bot.engine.state import FlowRun

KINDS = (Option("company", "Company"), Option("person", "Person"))


def form(version: int = 1, *, with_phone: bool = False) -> Flow:
    steps = [
        Field("name", prompt="p"),
        Choice("kind", prompt="p", options=KINDS),
        Field("company", prompt="p", when=lambda a: a.get("kind") == "company", depends_on=("kind",)),
    ]
    if with_phone:
        steps.append(Field("phone", prompt="p"))
    steps += [
        Upload("scan", prompt="p"),
        Summary("confirm"),
        Action("submit", depends_on=("confirm",)),
        Wait("payment"),
    ]
    return Flow("form", version, "t", tuple(steps))


def run_at(**answers: object) -> FlowRun:
    run = FlowRun(flow="form", version=1, run_id=1, step="")
    run.answers.update(answers)
    run.history = [n for n in ("name", "kind", "company", "scan") if n in answers]
    return run


def current_name(flow: Flow, run: FlowRun) -> str | None:
    step = progress.current(flow, run)
    return step.name if step else None


def test_the_current_step_is_the_first_applicable_step_not_done() -> None:
    flow = form()
    assert current_name(flow, run_at()) == "name"
    assert current_name(flow, run_at(name="A")) == "kind"
    assert current_name(flow, run_at(name="A", kind="company")) == "company"
    # A step whose condition does not hold is skipped, not done.
    assert current_name(flow, run_at(name="A", kind="person")) == "scan"


def test_actions_waits_and_summaries_are_done_only_when_marked() -> None:
    flow = form()
    run = run_at(name="A", kind="person", scan=[{"media_id": "m"}])
    assert current_name(flow, run) == "confirm"
    progress.mark_done(run, "confirm")
    progress.mark_done(run, "confirm")  # marking twice is marking once
    assert run.answers[progress.DONE] == ["confirm"]
    assert current_name(flow, run) == "submit"
    progress.mark_done(run, "submit")
    assert current_name(flow, run) == "payment"
    progress.mark_done(run, "payment")
    assert current_name(flow, run) is None


def test_clearing_an_answer_clears_its_dependents_and_every_confirmation() -> None:
    flow = form()
    run = run_at(name="A", kind="company", company="Acme", scan=[{"media_id": "m"}])
    progress.mark_done(run, "confirm")
    progress.mark_done(run, "submit")
    progress.clear(flow, run, "kind")
    assert "company" not in run.answers  # depends on kind
    assert "name" in run.answers  # does not
    # the summary must be confirmed again before anything after it runs
    assert "confirm" not in run.answers[progress.DONE]
    assert current_name(flow, run) == "kind"


def test_back_clears_the_previous_answer_and_stops_at_the_first_step() -> None:
    flow = form()
    run = run_at(name="A", kind="company")
    assert progress.go_back(flow, run, progress.current(flow, run))
    assert current_name(flow, run) == "kind"
    assert progress.go_back(flow, run, progress.current(flow, run))
    assert current_name(flow, run) == "name"
    assert not progress.go_back(flow, run, progress.current(flow, run))
    assert current_name(flow, run) == "name"


def test_an_upgrade_asks_only_what_the_new_version_adds_and_confirms_again() -> None:
    run = run_at(name="A", kind="person", scan=[{"media_id": "m"}])
    progress.mark_done(run, "confirm")
    new = form(2, with_phone=True)
    progress.upgrade(new, run)
    assert run.version == 2
    assert current_name(new, run) == "phone"  # the new question, answers kept
    assert "confirm" not in run.answers[progress.DONE]  # the summary showed less than it now does
    run.answers["phone"] = "138"
    assert current_name(new, run) == "confirm"


def test_an_upgrade_drops_answers_to_steps_the_new_version_no_longer_has() -> None:
    old = form(1, with_phone=True)
    run = run_at(name="A", kind="person")
    run.answers["phone"] = "138"
    run.history.append("phone")
    assert current_name(old, run) == "scan"
    progress.upgrade(form(2), run)
    assert "phone" not in run.answers
    assert "phone" not in run.history
    assert current_name(form(2), run) == "scan"


def test_a_run_holds_answers_only_once_the_user_answered_a_question() -> None:
    run = run_at()
    run.answers["_arg"] = "prefilled"
    assert not progress.holds_answers(run)
    run.answers["name"] = "A"
    run.history = ["name"]
    assert progress.holds_answers(run)


def test_the_count_assumes_the_first_option_until_the_choice_is_made() -> None:
    flow = form()  # "company" is asked only for kind=company, the first option
    assert flow.conditional
    assert progress.counted(flow, run_at(), flow.step("name")) == (1, 5)
    person = run_at(name="n", kind="person")
    assert progress.counted(flow, person, flow.step("scan")) == (3, 4)
    company = run_at(name="n", kind="company")
    assert progress.counted(flow, company, flow.step("company")) == (3, 5)


def test_the_count_of_a_flow_without_conditions_skips_answers_filled_in_for_the_user() -> None:
    flow = Flow(
        "plain",
        1,
        "t",
        (
            Field("name", prompt="p"),
            Field("seal", prompt="p"),
            Field("phone", prompt="p"),
            Summary("confirm"),
        ),
    )
    assert not flow.conditional
    run = FlowRun(flow="plain", version=1, run_id=1, step="")
    run.answers["seal"] = "preset"  # filled in without asking: not a step of the count
    assert progress.counted(flow, run, flow.step("name")) == (1, 3)
    run.answers["name"] = "n"
    run.history = ["name"]
    assert progress.counted(flow, run, flow.step("phone")) == (2, 3)
    # an answer the user gave stays a step when asked again (edited from the summary)
    run.history = ["name", "seal"]
    assert progress.counted(flow, run, flow.step("seal")) == (2, 4)
