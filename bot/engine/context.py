"""``Ctx``: what flow code sees while one message is handled.

It holds the conversation's state and collects replies; nothing is written or sent until the
runtime commits. Flow code reaches its own dependencies through ``ctx.services`` (the handlers
package defines what that object is; the engine does not know).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.engine.flow import Flow
from bot.engine.i18n import Translator
from bot.engine.messages import ConversationKey, FileRef, Inbound, Option, Origin, Reply, ReplyKind
from bot.engine.ports import MediaStore
from bot.engine.state import ConversationState, FlowRun, Session
from bot.engine.store import QueuedReply


class Ctx:
    def __init__(
        self,
        *,
        key: ConversationKey,
        conversation_id: int | None,
        state: ConversationState,
        inbound: Inbound | None,
        translator: Translator,
        services: Any,
        media: MediaStore,
        now: datetime,
    ) -> None:
        self.key = key
        self.conversation_id = conversation_id
        self.state = state
        self.inbound = inbound
        self.t = translator
        self.services = services
        self.media = media
        self.now = now
        self.replies: list[QueuedReply] = []
        self.flow: Flow | None = None  # the flow of ``state.run``, set by the runtime
        self._viewed: FlowRun | None = None  # set on a view of another run (``viewing``)

    # ---- answers of the current flow ---------------------------------------------------------

    @property
    def run(self) -> FlowRun:
        run = self._viewed or self.state.run
        if run is None:
            raise RuntimeError("no flow is running")
        return run

    @property
    def answers(self) -> dict[str, Any]:
        run = self._viewed or self.state.run
        return run.answers if run else {}

    def viewing(self, run: FlowRun) -> Ctx:
        """This context as seen from ``run`` (a run put aside or stacked): its answers are what
        ``ctx.get`` reads, for predicates such as a Wait's ``accepts``. Replies and state stay
        shared; the conversation's current run is not touched."""
        view = copy.copy(self)
        view._viewed = run
        return view

    def get(self, name: str, default: Any = None) -> Any:
        return self.answers.get(name, default)

    def set(self, name: str, value: Any) -> None:
        self.run.answers[name] = value

    def idempotency_key(self, purpose: str) -> str:
        """Stable across redeliveries and retries of the same step of the same flow run, so a
        platform call repeated after a crash does not create a second order."""
        run_id = self.state.run.run_id if self.state.run else 0
        return f"{self.key}:{run_id}:{purpose}"

    def wait_until(self, deadline: datetime) -> None:
        """Time the current Wait out at ``deadline`` instead of its declared ``timeout``: for
        waits that follow an outside clock (an order's payment deadline)."""
        self.run.wait_deadline = deadline.isoformat()

    # ---- the account ------------------------------------------------------------------------

    @property
    def session(self) -> Session | None:
        return self.state.session

    @property
    def logged_in(self) -> bool:
        return self.state.session is not None

    def login(self, session: Session) -> None:
        self.state.session = session

    def logout(self) -> None:
        self.state.session = None

    @property
    def memory(self) -> dict[str, Any]:
        return self.state.memory

    @property
    def locale(self) -> str:
        return self.t.locale

    # ---- replies -------------------------------------------------------------------------------

    def say(self, key: str, *, options: Sequence[Option] = (), **params: Any) -> None:
        self.say_text(self.t(key, **params), options=options)

    def say_text(self, text: str, *, options: Sequence[Option] = (), origin: Origin = Origin.BOT) -> None:
        self.replies.append(QueuedReply(Reply(ReplyKind.TEXT, text=text, options=tuple(options)), origin))

    def say_private(
        self,
        text: str,
        masked: str,
        *,
        options: Sequence[Option] = (),
        private_labels: Sequence[str] | None = None,
    ) -> None:
        """A message with the owner's own sensitive answers in full (a summary to check):
        ``masked`` is what transcripts, staff views and the history keep. ``private_labels``:
        the options' labels in full (one per option), likewise only for the recipient."""
        reply = Reply(ReplyKind.TEXT, text=masked, options=tuple(options))
        labels = tuple(private_labels) if private_labels is not None else None
        if labels is not None and (
            len(labels) != len(reply.options) or labels == tuple(o.label for o in reply.options)
        ):
            labels = None
        self.replies.append(
            QueuedReply(
                reply,
                Origin.BOT,
                private_text=text if text != masked or labels else None,
                private_labels=labels,
            )
        )

    def image(self, file: FileRef, caption: str = "") -> None:
        self.replies.append(QueuedReply(Reply(ReplyKind.IMAGE, text=caption, file=file), Origin.BOT))

    def document(self, file: FileRef, caption: str = "") -> None:
        self.replies.append(QueuedReply(Reply(ReplyKind.FILE, text=caption, file=file), Origin.BOT))

    def link(self, url: str, caption: str) -> None:
        self.replies.append(QueuedReply(Reply(ReplyKind.LINK, text=caption, url=url), Origin.BOT))

    def option(self, token: str, key: str, **params: Any) -> Option:
        """A button whose label is a catalog text. Tokens starting with ``@`` are global
        (menu, flows); others are scoped to the current step by the runtime."""
        return Option(token, self.t(key, **params))
