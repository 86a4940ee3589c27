"""A conversation as support staff see it: the transcript and the form in progress.

Sensitive answers are masked (ID numbers, phones) and secret ones hidden, as in the user's own
summary; the account token is opened for the platform call and never leaves this process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.engine.flow import Choice, Field, Upload
from bot.engine.i18n import Translator
from bot.engine.messages import ConversationKey, FileRef, Origin, OutboundMessage
from bot.engine.runtime import Engine
from bot.engine.secrets_box import mask, mask_text
from bot.engine.state import ConversationState, FlowRun
from bot.engine.store import ConversationStore, Transcripts

STAFF_LOCALE = "zh-CN"
TRANSCRIPT_LIMIT = 500


@dataclass(frozen=True)
class TranscriptLine:
    ref: str  # "in:<receipt id>" or "out:<outbox id>", unique within the conversation
    at: datetime
    who: str  # user, bot, staff, system, event
    text: str
    file: FileRef | None = None
    options: tuple[str, ...] = ()
    # "sent"; "queued" (not delivered yet); "held" (a bot message stopped by the takeover)
    status: str = "sent"

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "status": self.status,
            "at": self.at.isoformat(),
            "who": self.who,
            "text": self.text,
            "file": self.file.to_dict() if self.file else None,
            "options": list(self.options),
        }


@dataclass(frozen=True)
class FormAnswer:
    step: str
    label: str
    value: str
    files: tuple[FileRef, ...] = ()


@dataclass(frozen=True)
class FormProgress:
    flow: str
    title: str
    step: str
    step_label: str
    position: int  # 1-based among the steps the user sees; 0 when not an input step
    total: int
    answers: tuple[FormAnswer, ...]
    waiting_for: str | None  # a Wait step's status (payment, review, UKey job)


@dataclass(frozen=True)
class ConversationView:
    key: ConversationKey
    owner: str
    locale: str
    logged_in: bool
    phone_masked: str | None
    transcript: list[TranscriptLine]
    form: FormProgress | None
    paused: list[str] = field(default_factory=list)
    account_token: str | None = field(default=None, repr=False)


async def transcript_of(store: Transcripts, key: ConversationKey) -> list[TranscriptLine]:
    """What the user sent and what reached them, in order."""
    lines: list[tuple[datetime, int, TranscriptLine]] = []
    for entry in await store.inbound_log(key, TRANSCRIPT_LIMIT):
        body = entry["body"]
        at = entry["at"] or datetime.now(UTC)
        file = FileRef.from_dict(body["file"]) if body.get("file") else None
        if body.get("event"):
            event = body["event"]
            line = TranscriptLine(
                f"in:{entry['id']}", at, "event", f"{event.get('type')} ({event.get('id')})"
            )
        else:
            # ID and mobile numbers typed in free text are masked, as in the Telegram desk.
            line = TranscriptLine(f"in:{entry['id']}", at, "user", mask_text(str(body.get("text", ""))), file)
        lines.append((at, 0, line))
    outgoing = [(m, "sent") for m in await store.delivered(key, 0, TRANSCRIPT_LIMIT * 2)]
    outgoing += await _undelivered(store, key)
    for message, status in outgoing:
        reply = message.reply
        who = {Origin.BOT: "bot", Origin.STAFF: "staff", Origin.SYSTEM: "system"}[message.origin]
        text = reply.text if reply.url is None else f"{reply.text} {reply.url}"
        line = TranscriptLine(
            f"out:{message.outbox_id}",
            message.created_at,
            who,
            text,
            reply.file,
            tuple(o.label for o in reply.options),
            status,
        )
        lines.append((message.created_at, 1, line))
    # An answer is committed at the time of the message it answers: the message comes first.
    lines.sort(key=lambda item: (item[0], item[1], _seq(item[2].ref)))
    return [line for _, _, line in lines]


async def _undelivered(store: Transcripts, key: ConversationKey) -> list[tuple[OutboundMessage, str]]:
    """Messages not delivered (yet): staff should see their own reply at once, and what the
    takeover stopped."""
    return await store.undelivered(key, TRANSCRIPT_LIMIT)


def _seq(ref: str) -> int:
    return int(ref.split(":", 1)[1])


def form_of(engine: Engine, state: ConversationState, t: Translator) -> FormProgress | None:
    run = state.run
    if run is None:
        return None
    flow = engine.flows.get(run.flow)
    if flow is None:
        return FormProgress(run.flow, run.flow, run.step, run.step, 0, 0, (), None)
    visible = [s.name for s in flow.visible_steps(run.answers) if s.asks_user]
    step = flow.step(run.step) if flow.has_step(run.step) else None
    answers = tuple(
        _answer(s, run, t)
        for s in flow.steps
        if isinstance(s, (Field, Choice, Upload)) and s.name in run.answers and s.applies(run.answers)
    )
    step_label = run.step
    if step is not None:
        key = getattr(step, "label", "") or getattr(step, "prompt", "") or getattr(step, "status", "")
        step_label = t(key) if key and t.catalog.has(key) else run.step
    waiting_for = None
    if step is not None and not step.asks_user:
        status = getattr(step, "status", "")
        waiting_for = t(status) if status and t.catalog.has(status) else None
    return FormProgress(
        flow=run.flow,
        title=t(flow.title),
        step=run.step,
        step_label=step_label,
        position=visible.index(run.step) + 1 if run.step in visible else 0,
        total=len(visible),
        answers=answers,
        waiting_for=waiting_for,
    )


def _answer(step: Field | Choice | Upload, run: FlowRun, t: Translator) -> FormAnswer:
    label_key = step.label or step.prompt
    label = t(label_key) if label_key and t.catalog.has(label_key) else step.name
    value = run.answers[step.name]
    if isinstance(step, Field):
        if step.secret:
            return FormAnswer(step.name, label, "******")
        shown = step.display(value)
        return FormAnswer(step.name, label, mask(shown) if step.sensitive else shown)
    if isinstance(step, Upload):
        files = tuple(FileRef.from_dict(f) for f in value if isinstance(f, dict))
        return FormAnswer(step.name, label, ", ".join(f.filename for f in files), files)
    return FormAnswer(step.name, label, str(run.answers.get(f"_label.{step.name}", value)))


async def build_view(
    engine: Engine, store: ConversationStore, key: ConversationKey
) -> ConversationView | None:
    row = await store.get(key)
    if row is None:
        return None
    state = engine.codec.load(row.state)
    t = Translator(engine.catalog, STAFF_LOCALE)
    paused = [t(flow.title) if (flow := engine.flows.get(name)) else name for name in state.paused]
    session = state.session
    return ConversationView(
        key=key,
        owner=row.owner,
        locale=state.locale or STAFF_LOCALE,
        logged_in=session is not None,
        phone_masked=mask(session.phone) if session else None,
        transcript=await transcript_of(store, key),
        form=form_of(engine, state, t),
        paused=paused,
        account_token=session.token if session else None,
    )


def uploaded_media(view: ConversationView) -> set[str]:
    """Media ids staff may open from this conversation: what the user sent or was sent."""
    ids = {line.file.media_id for line in view.transcript if line.file is not None}
    if view.form is not None:
        ids |= {f.media_id for answer in view.form.answers for f in answer.files}
    return ids
