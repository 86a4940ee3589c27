"""The durable state of one conversation, and its JSON form.

Only JSON-able values live here. Sensitive answers and the account token are sealed by the
store's codec (``StateCodec``) before they reach the database and opened on load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.engine.secrets_box import SecretBox, is_sealed

STATE_FORMAT = 1
# Where runs put aside live in the stored JSON (inside "memory", the layout states were first
# written in, so stored conversations load unchanged): flow name -> FlowRun fields plus
# "paused_at". In memory they are typed (``ConversationState.paused`` / ``drafts``).
PAUSED = "_paused"
DRAFTS = "_drafts"  # runs the user cancelled while holding answers, resumable for a while


class Owner:
    """Who answers the user: the bot, nobody yet (queued for staff), or a named staff member."""

    BOT = "bot"
    WAITING = "waiting"
    STAFF_PREFIX = "staff:"

    @staticmethod
    def staff(agent: str) -> str:
        return Owner.STAFF_PREFIX + agent

    @staticmethod
    def is_bot(owner: str) -> bool:
        return owner == Owner.BOT


@dataclass
class FlowRun:
    flow: str
    version: int
    run_id: int
    step: str
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # input steps visited, for "back"
    editing: bool = False  # came from the summary to change one answer
    wait_deadline: str | None = None  # ISO time at which the current Wait times out
    failures: int = 0  # consecutive refused answers at the current step
    visit: int = 0  # how many times a step was entered: buttons are bound to (run_id, visit)
    # A question the run asks before going on: "cancel" (really cancel?) or "switch:<flow>"
    # (a process name typed at a text field: start it, or take the text as the answer?).
    confirming: str | None = None
    pending_text: str | None = None  # the typed text a "switch:" question is about

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowRun:
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        # dataclasses.asdict deep-copies every value recursively, which was the single largest
        # cost of handling a message; answers are JSON values the codec only replaces (never
        # mutates), so a shallow copy of the answers dict is enough.
        data = dict(self.__dict__)
        data["answers"] = dict(self.answers)
        data["history"] = list(self.history)
        return data


@dataclass(frozen=True)
class PausedRun:
    """A run put aside (from the menu, by another process, a timeout or the housekeeper), or
    cancelled and kept as a draft; ``paused_at`` is an ISO time."""

    run: FlowRun
    paused_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.run.to_dict()
        data["paused_at"] = self.paused_at
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PausedRun:
        fields = dict(data)
        paused_at = fields.pop("paused_at", None)
        return cls(FlowRun.from_dict(fields), paused_at)

    def age(self, now: datetime) -> timedelta | None:
        return now - datetime.fromisoformat(self.paused_at) if self.paused_at else None


@dataclass
class Session:
    account_id: str
    token: str
    phone: str
    realname_verified: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        return cls(**data)


@dataclass
class ConversationState:
    locale: str | None = None
    session: Session | None = None
    run: FlowRun | None = None
    stack: list[FlowRun] = field(default_factory=list)
    owner: str = Owner.BOT
    run_seq: int = 0
    memory: dict[str, Any] = field(default_factory=dict)  # remembered across flows (invoice data, ...)
    last_menu: list[str] = field(default_factory=list)  # tokens of the last menu, for "reply 1"
    # Every option of the latest turn that showed any: a digest of its label -> its token, so
    # typing a label does what tapping it does (digests: labels may quote what the user typed).
    last_labels: dict[str, str] = field(default_factory=dict)
    paused: dict[str, PausedRun] = field(default_factory=dict)  # flow name -> run put aside
    drafts: dict[str, PausedRun] = field(default_factory=dict)  # flow name -> cancelled run
    # Not stored: what the codec opened on load, (run_id, answer) -> (opened value, sealed
    # form), so an answer unchanged since is written back as it was read instead of being
    # sealed again (a fresh nonce and an encryption per sensitive answer per message).
    sealed: dict[tuple[str, int, str], tuple[Any, Any]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def next_run_id(self) -> int:
        self.run_seq += 1
        return self.run_seq

    def put_aside(self, run: FlowRun, at: datetime | None, *, keep_existing: bool = False) -> None:
        """Keep ``run`` to resume later under its flow's name (replacing an older one unless
        ``keep_existing``); the newest put aside is last."""
        if keep_existing and run.flow in self.paused:
            return
        self.paused.pop(run.flow, None)
        self.paused[run.flow] = PausedRun(run, at.isoformat() if at else None)

    def wait_deadline(self) -> datetime | None:
        if self.run and self.run.wait_deadline:
            return datetime.fromisoformat(self.run.wait_deadline)
        return None


def _state_dict(state: ConversationState) -> dict[str, Any]:
    memory = dict(state.memory)
    if state.paused:
        memory[PAUSED] = {name: p.to_dict() for name, p in state.paused.items()}
    if state.drafts:
        memory[DRAFTS] = {name: p.to_dict() for name, p in state.drafts.items()}
    return {
        "locale": state.locale,
        "session": dict(state.session.__dict__) if state.session else None,
        "run": state.run.to_dict() if state.run else None,
        "stack": [r.to_dict() for r in state.stack],
        "owner": state.owner,
        "run_seq": state.run_seq,
        "memory": memory,
        "last_menu": list(state.last_menu),
        "last_labels": dict(state.last_labels),
    }


def blank_state(locale: str | None, owner: str) -> dict[str, Any]:
    """The stored form of a conversation that holds nothing of anyone (an account deleted
    elsewhere): only its language and who holds it remain; nothing in it needs sealing."""
    return {**_state_dict(ConversationState(locale=locale, owner=owner)), "format": STATE_FORMAT}


class StateCodec:
    """Turns state into JSON and back, sealing what must not be readable at rest."""

    def __init__(self, box: SecretBox, sensitive_fields: Any) -> None:
        # ``sensitive_fields(flow_name) -> set[str]`` comes from the flow registry
        self._box = box
        self._sensitive = sensitive_fields

    def dump(self, state: ConversationState) -> dict[str, Any]:
        data = _state_dict(state)
        opened = state.sealed
        if state.session is not None:
            data["session"]["token"] = self._seal(opened, ("", 0, "token"), state.session.token)
            data["session"]["phone"] = self._seal(opened, ("", 0, "phone"), state.session.phone)
        # Runs put aside and drafts are stored in ``memory`` and hold answers just the same.
        paused = [*data["memory"].get(PAUSED, {}).values(), *data["memory"].get(DRAFTS, {}).values()]
        for run_data in [data["run"], *data["stack"], *paused]:
            if run_data is None:
                continue
            names = self._sensitive(run_data["flow"])
            answers = run_data["answers"]
            for name in names & answers.keys():
                key = (run_data["flow"], run_data["run_id"], name)
                answers[name] = self._seal(opened, key, answers[name])
        data["format"] = STATE_FORMAT
        return data

    def _seal(
        self, opened: dict[tuple[str, int, str], tuple[Any, Any]], key: tuple[str, int, str], value: Any
    ) -> Any:
        known = opened.get(key)
        if known is not None and known[0] is value:  # the very object opened or sealed before
            return known[1]
        sealed = self._box.seal(value)
        if isinstance(value, (str, int, float, bool)):  # immutable: identity means unchanged
            opened[key] = (value, sealed)
        return sealed

    def load(self, data: dict[str, Any]) -> ConversationState:
        data = dict(data)
        data.pop("format", None)
        opened: dict[tuple[str, int, str], tuple[Any, Any]] = {}
        session = data.get("session")
        if session is not None:
            session = dict(session)
            for key in ("token", "phone"):
                if is_sealed(session[key]):
                    sealed = session[key]
                    session[key] = self._box.open(sealed)
                    opened["", 0, key] = (session[key], sealed)
            data["session"] = Session.from_dict(session)
        runs: list[FlowRun | None] = []
        for run_data in [data.get("run"), *data.get("stack", [])]:
            if run_data is None:
                runs.append(None)
                continue
            runs.append(FlowRun.from_dict({**run_data, "answers": self._open_all(run_data, opened)}))
        data["run"] = runs[0]
        data["stack"] = [r for r in runs[1:] if r is not None]
        memory = dict(data.get("memory", {}))
        for key, target in ((PAUSED, "paused"), (DRAFTS, "drafts")):
            shelf = memory.pop(key, None) or {}
            data[target] = {
                name: PausedRun.from_dict({**run, "answers": self._open_all(run, opened)})
                for name, run in shelf.items()
            }
        data["memory"] = memory
        return ConversationState(**data, sealed=opened)

    def _open_all(
        self, run: dict[str, Any], opened: dict[tuple[str, int, str], tuple[Any, Any]]
    ) -> dict[str, Any]:
        answers = dict(run["answers"])
        for name, value in answers.items():
            if is_sealed(value):
                answers[name] = plain = self._box.open(value)
                if isinstance(plain, (str, int, float, bool)):  # immutable: identity means unchanged
                    opened[run["flow"], run["run_id"], name] = (plain, value)
        return answers
