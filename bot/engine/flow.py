"""Declarative flows: what a process asks, in which order, and what it does with the answers.

A flow is a tuple of steps. Input steps (``Field``, ``Choice``, ``Upload``, ``Summary``) ask the
user; ``Action`` runs code when reached; ``Wait`` parks the conversation until an external event
(payment, review, UKey job) or its timeout. The runtime (``bot.engine.runtime``) interprets the
steps; flows never see a channel, a database or a lock.

Every step may be skipped by a ``when`` condition on the answers so far, and may name the answers
it ``depends_on``: editing one of those from the summary clears it, so it is asked again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from bot.engine.messages import ExternalEvent, Option

if TYPE_CHECKING:
    from bot.engine.context import Ctx

Answers: TypeAlias = Mapping[str, Any]
PREVIOUS = "_was."  # answers[PREVIOUS + name]: a field's answer before it was cleared to be edited


class LoginRequired(Exception):
    """Step code needs the account and the chat has none (logged out meanwhile, or the login
    expired): the runtime asks the user to log in and then continues where they were."""


class Invalid(Exception):
    """An answer was refused. ``key`` is a catalog key; ``params`` fill its placeholders."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


# ---- what step code may return ------------------------------------------------------------


@dataclass(frozen=True)
class Next:
    """Go on to the next applicable step (what returning ``None`` means)."""


@dataclass(frozen=True)
class GoTo:
    """Go (back) to a named step, optionally telling the user why (a catalog key)."""

    step: str
    error: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stay:
    """Remain at the current step without asking again (a Wait keeps waiting); ``reprompt``
    shows the step's prompt (a Wait's status and buttons) once more."""

    reprompt: bool = False


@dataclass(frozen=True)
class Finish:
    """End the flow now; the conversation returns to the caller flow or to the home menu."""

    show_home: bool = True


@dataclass(frozen=True)
class StartFlow:
    """Start another flow. ``resume`` keeps the current one to come back to when it finishes."""

    flow: str
    prefill: Mapping[str, Any] = field(default_factory=dict)
    resume: bool = False


Outcome: TypeAlias = Next | GoTo | Stay | Finish | StartFlow
StepResult: TypeAlias = Awaitable[Outcome | None]
Condition: TypeAlias = Callable[[Answers], bool]
Parser: TypeAlias = Callable[[str], Any]
# A check may return a normalised value to store instead of the parsed one.
Check: TypeAlias = Callable[["Ctx", Any], Awaitable[Any]]
OptionSource: TypeAlias = Callable[["Ctx"], Awaitable[Sequence[Option]]]
Formatter: TypeAlias = Callable[[Any], str]


def _strip(text: str) -> str:
    return text.strip()


def _display(value: Any) -> str:
    return str(value)


# ---- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str

    # the defaults below are shared by every step kind
    def applies(self, answers: Answers) -> bool:
        when: Condition | None = getattr(self, "when", None)
        return when is None or bool(when(answers))

    @property
    def asks_user(self) -> bool:
        return True

    @property
    def dependencies(self) -> tuple[str, ...]:
        deps: tuple[str, ...] = getattr(self, "depends_on", ())
        return deps


@dataclass(frozen=True)
class Field(Step):
    """A typed free-text answer: ``parse`` turns text into a value (or raises ``Invalid``),
    ``check`` may consult the platform. ``sensitive`` answers are sealed at rest and masked in
    the summary and logs; ``secret`` ones (passwords) are never shown at all."""

    prompt: str = ""
    label: str = ""  # catalog key of the short name used in the summary; defaults to the prompt
    parse: Parser = _strip
    check: Check | None = None
    display: Formatter = _display
    sensitive: bool = False
    secret: bool = False
    when: Condition | None = None
    depends_on: tuple[str, ...] = ()
    max_length: int = 200
    suggestions: OptionSource | None = None  # e.g. "use the phone you logged in with"
    prompt_params: Callable[[Ctx], Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class Choice(Step):
    """Pick one of a few options; the user may tap, send the number, or type the label."""

    prompt: str = ""
    label: str = ""
    options: OptionSource | Sequence[Option] = ()
    when: Condition | None = None
    depends_on: tuple[str, ...] = ()
    prompt_params: Callable[[Ctx], Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class Upload(Step):
    """One or more files of accepted kinds (by content, not by name) up to ``max_bytes`` each."""

    prompt: str = ""
    label: str = ""
    accept: frozenset[str] = frozenset({"image/jpeg", "image/png", "application/pdf"})
    max_bytes: int = 10 * 1024 * 1024
    min_files: int = 1
    max_files: int = 1
    when: Condition | None = None
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary(Step):
    """Shows every answer so far; the user confirms, or taps one to edit it."""

    title: str = ""
    editable: tuple[str, ...] | None = None  # None: every input step before it
    when: Condition | None = None
    # The card's sections: (heading catalog key, step names); answers in no group come last.
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Action(Step):
    """Runs code when reached, without asking; may say things, store answers and branch."""

    run: Callable[[Ctx], StepResult] | None = None
    when: Condition | None = None
    depends_on: tuple[str, ...] = ()  # run again when one of these answers changes

    @property
    def asks_user(self) -> bool:
        return False


@dataclass(frozen=True)
class Wait(Step):
    """Parks the flow until an external event it ``accepts`` arrives, or ``timeout`` passes.

    ``on_enter`` tells the user what is awaited (and, e.g., sends the payment link);
    ``on_message`` answers whatever the user writes meanwhile (by default ``status`` text is
    repeated); ``options`` are extra buttons offered while waiting (token -> handler).
    """

    status: str = ""
    accepts: Callable[[Ctx, ExternalEvent], bool] | None = None
    on_enter: Callable[[Ctx], StepResult] | None = None
    on_event: Callable[[Ctx, ExternalEvent], StepResult] | None = None
    on_message: Callable[[Ctx, str], StepResult] | None = None
    timeout: timedelta | None = None
    on_timeout: Callable[[Ctx], StepResult] | None = None
    options: Callable[[Ctx], Awaitable[Sequence[Option]]] | None = None
    on_option: Callable[[Ctx, str], StepResult] | None = None
    status_params: Callable[[Ctx], Mapping[str, Any]] | None = None
    when: Condition | None = None
    depends_on: tuple[str, ...] = ()
    # What users write while this step waits is a secret they may type by mistake (a password
    # while the password page is open, a PIN while the UKey job runs): nothing of it is kept.
    sensitive: bool = False

    @property
    def asks_user(self) -> bool:
        return False


# ---- flows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """A named, versioned process. Bump ``version`` when steps change meaning: a conversation
    saved under an older version resumes at the first step the new version still needs."""

    name: str
    version: int
    title: str  # catalog key
    steps: tuple[Step, ...]
    requires_login: bool = False
    requires_realname: bool = False
    on_finish: Callable[[Ctx], StepResult] | None = None
    on_cancel: Callable[[Ctx], StepResult] | None = None
    help: str | None = None  # catalog key of the help text for this process
    # Called when a run put aside is taken up again: the world may have moved on meanwhile (its
    # order cancelled, its UKey job finished). ``Finish`` drops the run, ``StartFlow`` of this
    # same flow starts it afresh; ``None`` continues where the user was.
    on_resume: Callable[[Ctx], StepResult] | None = None
    # The two or three things that make sense after this process ends (shown instead of the
    # whole menu, with a "main menu" button); None shows the home menu.
    next_steps: Callable[[Ctx], Sequence[Option]] | None = None

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"flow {self.name}: duplicate step names")
        # Looked up on every message: computed once (the flow is frozen).
        object.__setattr__(self, "_positions", {name: i for i, name in enumerate(names)})
        sensitive = {s.name for s in self.steps if isinstance(s, Field) and (s.sensitive or s.secret)}
        # and the previous value of a sensitive field kept while it is asked again (PREVIOUS)
        object.__setattr__(self, "_sensitive", frozenset(sensitive | {PREVIOUS + n for n in sensitive}))
        asking = tuple((s, getattr(s, "when", None)) for s in self.steps if s.asks_user)
        object.__setattr__(self, "_asking", asking)
        object.__setattr__(self, "_asked", tuple(s for s, _ in asking))
        object.__setattr__(self, "_conditional", any(when is not None for _, when in asking))
        for step in self.steps:
            for dep in step.dependencies:
                if dep not in names:
                    raise ValueError(f"flow {self.name}: step {step.name} depends on unknown {dep}")

    def step(self, name: str) -> Step:
        return self.steps[self.index(name)]

    def has_step(self, name: str) -> bool:
        positions: dict[str, int] = self.__dict__["_positions"]
        return name in positions

    def index(self, name: str) -> int:
        positions: dict[str, int] = self.__dict__["_positions"]
        return positions[name]

    def visible_steps(self, answers: Answers) -> Sequence[Step]:
        if not self.__dict__["_conditional"]:
            asked: tuple[Step, ...] = self.__dict__["_asked"]  # the same whatever was answered
            return asked
        asking: tuple[tuple[Step, Condition | None], ...] = self.__dict__["_asking"]
        return [step for step, when in asking if when is None or when(answers)]

    @property
    def conditional(self) -> bool:
        """Whether a step it asks depends on earlier answers (``when``): if not, the steps
        shown are the same whatever was answered."""
        conditional: bool = self.__dict__["_conditional"]
        return conditional

    def dependents_of(self, name: str) -> set[str]:
        """Every step whose answer depends on ``name``, directly or through another."""
        out: set[str] = set()
        frontier = {name}
        while frontier:
            nxt = {s.name for s in self.steps if frontier & set(s.dependencies)} - out
            out |= nxt
            frontier = nxt
        return out

    def sensitive_names(self) -> frozenset[str]:
        """Answers sealed at rest: sensitive and secret fields, and the previous value of a
        sensitive field kept while it is asked again (``PREVIOUS``)."""
        sensitive: frozenset[str] = self.__dict__["_sensitive"]
        return sensitive


class FlowRegistry:
    def __init__(self, flows: Sequence[Flow] = ()) -> None:
        self._flows: dict[str, Flow] = {}
        for flow in flows:
            self.register(flow)

    def register(self, flow: Flow) -> None:
        if flow.name in self._flows:
            raise ValueError(f"flow {flow.name} registered twice")
        self._flows[flow.name] = flow

    def get(self, name: str) -> Flow | None:
        return self._flows.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._flows

    def names(self) -> list[str]:
        return list(self._flows)
