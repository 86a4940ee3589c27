"""The engine: handles one inbound message or event for one conversation, durably.

``Engine.handle`` is the whole promise of the engine in one call:

1. hold the conversation's lock (in process, and across workers when configured);
2. load the state and the receipt of this delivery id: a duplicate gets the replies it got the
   first time, and nothing else happens;
3. interpret the flow (``FlowInterpreter``) against a ``Ctx``, collecting replies;
4. commit state, receipt and outbox rows in one transaction guarded by the version read;
5. wake the outbox dispatcher, which delivers (and re-checks ownership just before sending).

A bug in flow code never reaches the user as a stack trace: the state is left as it was, the
delivery is recorded with an apology, and the error is logged.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import FlowRegistry, LoginRequired
from bot.engine.i18n import Catalog, Translator, normalise_locale
from bot.engine.in_band import InBandAnswer, InBandCommit
from bot.engine.interpreter import FlowInterpreter, HomeHandler
from bot.engine.locks import ConversationLocks
from bot.engine.messages import (
    ConversationKey,
    ExternalEvent,
    Inbound,
    InboundKind,
    Origin,
    OutboundMessage,
    Reply,
)
from bot.engine.ports import Clock, MediaStore, SystemClock
from bot.engine.secrets_box import SecretBox
from bot.engine.state import ConversationState, Owner, StateCodec
from bot.engine.store import Commit, ConversationStore, QueuedReply, SideWrite, Snapshot
from bot.engine.tokens import label_digest
from bot.errors import VersionConflict
from bot.redaction import redact
from observability.logs import bound as bound_log_ids

# The flow offered when a user types their password into the chat (when the catalogue has it).
RESET_PASSWORD_FLOW = "reset_password"
# state.memory flag: account news goes to this (most recent) chat only, not to every chat.
PUSH_LATEST_ONLY = "push_latest_only"

log = logging.getLogger("sealbot.engine")

EventHandler = Callable[[Ctx, ExternalEvent], Awaitable[None]]
OwnershipHook = Callable[[Ctx], Awaitable[None]]


@dataclass
class EngineHooks:
    """Points where other packages plug in without the engine importing them."""

    # status pushes for events no waiting flow consumed (platform events, job updates)
    event_handlers: dict[str, EventHandler] = field(default_factory=dict)
    # the user asked for a human (support inbox is told)
    on_handoff: OwnershipHook | None = None
    # a user message arrived while staff own the conversation
    on_message_for_staff: OwnershipHook | None = None
    # called after every commit (e.g. to wake the outbox dispatcher)
    after_commit: list[Callable[[list[OutboundMessage]], None]] = field(default_factory=list)
    # called as each message from a user arrives, before it is handled (metrics)
    on_inbound: list[Callable[[Inbound], None]] = field(default_factory=list)


@dataclass(frozen=True)
class PassiveWindow:
    """Channels that can answer inside the webhook response (WeChat) get their replies held
    back from the dispatcher for this long, so the webhook can claim them first."""

    channel: str
    hold: timedelta


class Engine:
    MAX_CONFLICT_RETRIES = 5
    DECODED_STATES = 10_000  # conversations whose last committed state is kept decoded

    def __init__(
        self,
        *,
        store: ConversationStore,
        flows: FlowRegistry,
        catalog: Catalog,
        box: SecretBox,
        media: MediaStore,
        services: Any = None,
        locks: ConversationLocks | None = None,
        clock: Clock | None = None,
        home: HomeHandler | None = None,
        intents: Callable[[str], str | None] | None = None,
        hooks: EngineHooks | None = None,
        passive_windows: Sequence[PassiveWindow] = (),
    ) -> None:
        self.store = store
        self.flows = flows
        self.catalog = catalog
        self.media = media
        self.services = services
        self.locks = locks or ConversationLocks()
        self.clock: Clock = clock or SystemClock()
        self.hooks = hooks or EngineHooks()
        self.box = box
        self.codec = StateCodec(box, self._sensitive_fields)
        self.interpreter = FlowInterpreter(flows, home=home, intents=intents)
        self._passive = {w.channel: w.hold for w in passive_windows}
        # key -> (version written, state): what this process committed last, still decoded
        self._decoded: OrderedDict[ConversationKey, tuple[int, ConversationState]] = OrderedDict()

    def _sensitive_fields(self, flow_name: str) -> frozenset[str]:
        flow = self.flows.get(flow_name)
        return flow.sensitive_names() if flow else frozenset()

    def translator(self, state: ConversationState) -> Translator:
        return Translator(self.catalog, state.locale or "zh-CN")

    # ---- handling -------------------------------------------------------------------------------

    async def handle(
        self,
        inbound: Inbound,
        *,
        side_writes: Sequence[SideWrite] = (),
        in_band: InBandAnswer | None = None,
    ) -> list[OutboundMessage]:
        """Handle one delivery; returns the replies it produced (the same ones for a duplicate).

        ``side_writes`` (a channel's bookkeeping of this delivery) are committed with it, in the
        same transaction; a duplicate, which commits nothing, writes them on their own.
        ``in_band``: the commit puts the leading replies in the request's own response if its
        window is still open (``bot.engine.in_band``)."""
        for observe in self.hooks.on_inbound:
            observe(inbound)
        # Every line logged while handling it names the conversation (JSON logs).
        with bound_log_ids(conversation=str(inbound.key)):
            for attempt in range(self.MAX_CONFLICT_RETRIES):
                async with self.locks.hold(inbound.key):
                    try:
                        messages = await self._handle_locked(inbound, side_writes, in_band)
                    except VersionConflict:
                        # Another worker without our lock (lost lock, misconfiguration) won the
                        # write; reading again and redoing the message is always safe because
                        # nothing was committed.
                        log.warning("version conflict on %s, attempt %d", inbound.key, attempt + 1)
                        continue
                for callback in self.hooks.after_commit:
                    callback(messages)
                return messages
        raise VersionConflict(str(inbound.key))

    async def _handle_locked(
        self, inbound: Inbound, side_writes: Sequence[SideWrite], in_band: InBandAnswer | None
    ) -> list[OutboundMessage]:
        snapshot = await self.store.load(inbound.key, inbound.message_id)
        if snapshot.duplicate_of is not None:
            log.info("duplicate delivery %s on %s", inbound.message_id, inbound.key)
            for side in side_writes:
                await self.store.write(side.statement, side.params)
            return await self.store.outbound(snapshot.duplicate_of)
        state = self._load_state(snapshot, inbound, reuse=inbound.key)
        ctx = self._ctx(inbound.key, snapshot, state, inbound)
        # While staff own the conversation the user talks to a person, not to the paused step.
        sensitive_step = Owner.is_bot(state.owner) and self.interpreter.expects_sensitive(ctx)
        # What may be stored of the text is decided before the flow runs: the one redaction
        # step every channel's messages pass (see ``bot.redaction``).
        stored = await redact(inbound.text, state.memory, self.clock.now(), secret_step=sensitive_step)
        if stored.password:
            # The account's password typed into the chat: it is never an answer to anything.
            self._warn_password_in_chat(ctx)
            change = self._commit_for(ctx, inbound, stored.text, side_writes, in_band)
            messages = await self.store.commit(inbound.key, snapshot, change, self.clock.now())
            self._remember(inbound.key, snapshot, ctx.state)
            return messages
        try:
            await self._dispatch(ctx, inbound)
        except LoginRequired:
            # The login is gone (logged out in another chat, expired). What the user answered
            # is kept (the step that needed the login is not marked done, so it runs again):
            # log in, then continue at that step.
            await self.interpreter.login_again(ctx)
        except Exception:
            log.exception("flow code failed on %s (%s)", inbound.key, inbound.kind)
            # Start again from what was read: nothing the failed code changed is kept.
            state = self._load_state(snapshot, inbound)
            ctx = self._ctx(inbound.key, snapshot, state, inbound)
            ctx.say("engine.internal_error")
            await self.interpreter.reprompt(ctx)
        change = self._commit_for(ctx, inbound, stored.text, side_writes, in_band)
        messages = await self.store.commit(inbound.key, snapshot, change, self.clock.now())
        self._remember(inbound.key, snapshot, ctx.state)
        return messages

    def _warn_password_in_chat(self, ctx: Ctx) -> None:
        options = []
        if RESET_PASSWORD_FLOW in self.flows:
            options.append(ctx.option(f"@go:{RESET_PASSWORD_FLOW}", "engine.password_reset_button"))
        ctx.say("engine.password_in_chat", options=options)

    def _load_state(
        self, snapshot: Snapshot, inbound: Inbound, *, reuse: ConversationKey | None = None
    ) -> ConversationState:
        """The state ``snapshot`` read. ``reuse``: the state this process committed last for
        that conversation is taken instead of decoding and unsealing it again, if (and only if)
        the stored version is still the one that commit wrote: any other writer bumps it."""
        if reuse is not None:
            cached = self._decoded.pop(reuse, None)
            if cached is not None and snapshot.exists and cached[0] == snapshot.version:
                return cached[1]
        if snapshot.state is None:
            return ConversationState(locale=normalise_locale(inbound.language_hint))
        return self.codec.load(snapshot.state)

    def _remember(self, key: ConversationKey, snapshot: Snapshot, state: ConversationState) -> None:
        # Every store's commit writes version + 1 (a new conversation: 1) or fails.
        self._decoded[key] = (snapshot.version + 1, state)
        if len(self._decoded) > self.DECODED_STATES:
            self._decoded.popitem(last=False)

    def _ctx(
        self, key: ConversationKey, snapshot: Snapshot, state: ConversationState, inbound: Inbound | None
    ) -> Ctx:
        return Ctx(
            key=key,
            conversation_id=snapshot.conversation_id,
            state=state,
            inbound=inbound,
            translator=self.translator(state),
            services=self.services,
            media=self.media,
            now=self.clock.now(),
        )

    async def _dispatch(self, ctx: Ctx, inbound: Inbound) -> None:
        state = ctx.state
        if inbound.kind is InboundKind.EVENT:
            assert inbound.event is not None
            await self._on_event(ctx, inbound.event)
            return
        if not Owner.is_bot(state.owner):
            # Staff own the conversation: the bot keeps quiet and lets the desk know.
            if self.hooks.on_message_for_staff is not None:
                await self.hooks.on_message_for_staff(ctx)
            return
        handoff_before = state.owner
        await self.interpreter.on_user_input(ctx, inbound)
        if state.owner == Owner.WAITING and handoff_before != Owner.WAITING and self.hooks.on_handoff:
            await self.hooks.on_handoff(ctx)

    async def _on_event(self, ctx: Ctx, event: ExternalEvent) -> None:
        consumed = await self.interpreter.on_event(ctx, event)
        if consumed:
            return
        handler = self.hooks.event_handlers.get(event.type)
        if handler is not None:
            await handler(ctx, event)
        else:
            log.info("event %s (%s) for %s had no taker", event.event_id, event.type, ctx.key)

    def _commit_for(
        self,
        ctx: Ctx,
        inbound: Inbound | None,
        stored_text: str | None,
        side_writes: Sequence[SideWrite] = (),
        in_band: InBandAnswer | None = None,
    ) -> Commit:
        state = ctx.state
        not_before = None
        hold = self._passive.get(ctx.key.channel)
        if hold is not None and inbound is not None and inbound.kind is not InboundKind.EVENT:
            not_before = self.clock.now() + hold
        replies = [
            QueuedReply(self._seal_private(r), r.origin, r.not_before or not_before) for r in ctx.replies
        ]
        shown = {label_digest(o.label): o.token for r in ctx.replies for o in r.reply.options}
        if shown:
            state.last_labels = shown  # typing one of these labels next does what tapping it does
        return Commit(
            state=self.codec.dump(state),
            owner=state.owner,
            platform_account_id=state.session.account_id if state.session else None,
            flow=state.run.flow if state.run else None,
            wait_deadline=state.wait_deadline(),
            message_id=inbound.message_id if inbound else None,
            inbound_kind=inbound.kind.value if inbound else "push",
            inbound_body=self._inbound_body(inbound, stored_text),
            replies=replies,
            in_reply_to=inbound.message_id if inbound and inbound.kind is not InboundKind.EVENT else None,
            touched_by_user=inbound is not None and inbound.kind is not InboundKind.EVENT,
            side_writes=side_writes,
            in_band=None
            if in_band is None
            else InBandCommit(
                in_band.window,
                in_band.plan([queued.reply for queued in replies], locale=ctx.locale, owner=state.owner),
            ),
        )

    def _seal_private(self, queued: QueuedReply) -> Reply:
        if queued.private_text is None:
            return queued.reply
        if queued.private_labels is None:
            return replace(queued.reply, sealed=self.box.seal(queued.private_text))
        private = {"text": queued.private_text, "labels": list(queued.private_labels)}
        return replace(queued.reply, sealed=self.box.seal(private))

    def _inbound_body(self, inbound: Inbound | None, stored_text: str | None) -> dict[str, Any]:
        if inbound is None:
            return {}
        body: dict[str, Any] = {"at": inbound.at.isoformat()}
        if inbound.text and stored_text:
            body["text"] = stored_text[:2000]
        if inbound.file:
            body["file"] = inbound.file.to_dict()
        if inbound.event:
            body["event"] = {"id": inbound.event.event_id, "type": inbound.event.type}
        return body

    # ---- proactive messages, events, ownership, timers -------------------------------------------

    async def push(
        self,
        key: ConversationKey,
        build: Callable[[Ctx], Awaitable[None]],
        *,
        dedupe_id: str | None = None,
    ) -> list[OutboundMessage]:
        """Run ``build`` against the conversation (it may say things and change state) and
        commit, as for an inbound message; ``dedupe_id`` makes the push exactly-once."""
        async with self.locks.hold(key):
            snapshot = await self.store.load(key, dedupe_id)
            if snapshot.duplicate_of is not None:
                return await self.store.outbound(snapshot.duplicate_of)
            state = self._load_state(snapshot, Inbound.text_message(key, "", ""), reuse=key)
            ctx = self._ctx(key, snapshot, state, None)
            await build(ctx)
            change = self._commit_for(ctx, None, None)
            if dedupe_id is not None:
                change = replace(change, message_id=dedupe_id)
            messages = await self.store.commit(key, snapshot, change, self.clock.now())
            self._remember(key, snapshot, ctx.state)
        for callback in self.hooks.after_commit:
            callback(messages)
        return messages

    async def deliver_event(self, key: ConversationKey, event: ExternalEvent) -> list[OutboundMessage]:
        return await self.handle(Inbound.external(key, event))

    async def deliver_account_event(
        self, platform_account_id: str, event: ExternalEvent
    ) -> list[OutboundMessage]:
        """An event about an account reaches the conversation that waits for it, or else every
        chat where the account is logged in (each device sees the news), or only the most
        recently active one when the user chose so there (``PUSH_LATEST_ONLY``)."""
        keys = await self.store.keys_for_account(platform_account_id)
        if not keys:
            return []
        latest_only = False
        for index, key in enumerate(keys):
            snapshot = await self.store.load(key, None)
            if snapshot.state is None:
                continue
            state = self.codec.load(snapshot.state)
            if index == 0:
                latest_only = bool(state.memory.get(PUSH_LATEST_ONLY))
            ctx = self._ctx(key, snapshot, state, None)
            if self.interpreter.would_consume(ctx, event):
                return await self.deliver_event(key, event)
        if latest_only:
            return await self.deliver_event(keys[0], event)
        delivered: list[OutboundMessage] = []
        for key in keys:
            delivered += await self.deliver_event(key, event)
        return delivered

    async def set_owner(self, key: ConversationKey, owner: str, *, notice: str | None = None) -> None:
        """Change who answers; ``notice`` (a catalog key) tells the user, whoever owns it."""

        async def change(ctx: Ctx) -> None:
            ctx.state.owner = owner
            if notice:
                ctx.say_text(ctx.t(notice), origin=Origin.SYSTEM)
            if Owner.is_bot(owner):
                await self.interpreter.reprompt(ctx)

        await self.push(key, change)

    async def staff_say(self, key: ConversationKey, reply: Reply) -> list[OutboundMessage]:
        async def say(ctx: Ctx) -> None:
            ctx.replies.append(QueuedReply(reply, Origin.STAFF))

        return await self.push(key, say)

    async def fire_due_timeouts(self, *, limit: int = 100) -> int:
        """Deliver a timeout event to every conversation whose Wait has passed its deadline.
        The event id names the run and step, so firing twice has one effect."""
        fired = 0
        for key in await self.store.due_waits(self.clock.now(), limit):
            snapshot = await self.store.load(key, None)
            if snapshot.state is None:
                continue
            state = self.codec.load(snapshot.state)
            if state.run is None:
                continue
            event = ExternalEvent(
                event_id=f"timeout:{state.run.run_id}:{state.run.step}:{state.run.wait_deadline}",
                type=FlowInterpreter.TIMEOUT_EVENT,
                data={"run_id": state.run.run_id, "step": state.run.step},
            )
            await self.deliver_event(key, event)
            fired += 1
        return fired
