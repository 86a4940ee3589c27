"""The durable state of one conversation, and its JSON form.

Only JSON-able values live here. Sensitive answers and the account token are sealed by the
store's codec (``StateCodec``) before they reach the database and opened on load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.engine.secrets_box import SecretBox, is_sealed

STATE_FORMAT = 1
PAUSED = "_paused"  # memory[PAUSED]: flow name -> a run the user put aside (FlowRun fields)


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowRun:
        return cls(**data)


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

    def next_run_id(self) -> int:
        self.run_seq += 1
        return self.run_seq

    def wait_deadline(self) -> datetime | None:
        if self.run and self.run.wait_deadline:
            return datetime.fromisoformat(self.run.wait_deadline)
        return None


def _run_dict(run: FlowRun) -> dict[str, Any]:
    # dataclasses.asdict deep-copies every value recursively, which was the single largest
    # cost of handling a message; answers are JSON values the codec only replaces (never
    # mutates), so a shallow copy of the answers dict is enough.
    data = dict(run.__dict__)
    data["answers"] = dict(run.answers)
    data["history"] = list(run.history)
    return data


def _state_dict(state: ConversationState) -> dict[str, Any]:
    memory = dict(state.memory)
    if PAUSED in memory:
        memory[PAUSED] = {
            name: {**run, "answers": dict(run["answers"])} for name, run in memory[PAUSED].items()
        }
    return {
        "locale": state.locale,
        "session": dict(state.session.__dict__) if state.session else None,
        "run": _run_dict(state.run) if state.run else None,
        "stack": [_run_dict(r) for r in state.stack],
        "owner": state.owner,
        "run_seq": state.run_seq,
        "memory": memory,
        "last_menu": list(state.last_menu),
    }


class StateCodec:
    """Turns state into JSON and back, sealing what must not be readable at rest."""

    def __init__(self, box: SecretBox, sensitive_fields: Any) -> None:
        # ``sensitive_fields(flow_name) -> set[str]`` comes from the flow registry
        self._box = box
        self._sensitive = sensitive_fields

    def dump(self, state: ConversationState) -> dict[str, Any]:
        data = _state_dict(state)
        if state.session is not None:
            data["session"]["token"] = self._box.seal(state.session.token)
            data["session"]["phone"] = self._box.seal(state.session.phone)
        # Runs put aside from the menu live in ``memory`` and hold answers just the same.
        paused = list(data["memory"].get(PAUSED, {}).values())
        for run_data in [data["run"], *data["stack"], *paused]:
            if run_data is None:
                continue
            names = self._sensitive(run_data["flow"])
            for name in names & set(run_data["answers"]):
                run_data["answers"][name] = self._box.seal(run_data["answers"][name])
        data["format"] = STATE_FORMAT
        return data

    def load(self, data: dict[str, Any]) -> ConversationState:
        data = dict(data)
        data.pop("format", None)
        session = data.get("session")
        if session is not None:
            session = dict(session)
            for key in ("token", "phone"):
                if is_sealed(session[key]):
                    session[key] = self._box.open(session[key])
            data["session"] = Session.from_dict(session)
        runs: list[FlowRun | None] = []
        for run_data in [data.get("run"), *data.get("stack", [])]:
            if run_data is None:
                runs.append(None)
                continue
            runs.append(FlowRun.from_dict({**run_data, "answers": self._open_all(run_data["answers"])}))
        data["run"] = runs[0]
        data["stack"] = [r for r in runs[1:] if r is not None]
        paused = data.get("memory", {}).get(PAUSED)
        if paused:
            data["memory"] = {
                **data["memory"],
                PAUSED: {
                    name: {**run, "answers": self._open_all(run["answers"])} for name, run in paused.items()
                },
            }
        return ConversationState(**data)

    def _open_all(self, answers: dict[str, Any]) -> dict[str, Any]:
        return {k: self._box.open(v) if is_sealed(v) else v for k, v in answers.items()}
