"""``SupportDesk``: who owns a conversation, and every staff action on it.

The ticket row decides ownership races: every change is one conditional UPDATE (claim only a
waiting ticket, release only your own, ...), so two agents cannot both win, also across
workers. The engine is told afterwards (``Engine.set_owner``), and the outbox re-checks the
owner before each send, so the bot is silent from the moment staff own the conversation.

The engine calls two hooks while it handles a message, under the conversation's lock:
``on_handoff`` (the user asked for a human) and ``on_message_for_staff`` (the user wrote while
staff own the conversation). They must not call back into the engine's locking API; they
speak through ``ctx`` instead, and what they say commits with the message.
"""

# Over 600 lines: the support desk's one state machine (claim, relay, hold, hand-back to the
# exact step, timeouts, quota); its transitions are checked against each other here, and the
# relay is the piece to move out first if it grows.

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.engine.context import Ctx
from bot.engine.interpreter import FAILURES_BEFORE_HUMAN, nav_token
from bot.engine.messages import (
    ConversationKey,
    FileRef,
    Inbound,
    InboundKind,
    Origin,
    OutboundMessage,
    Reply,
    ReplyKind,
)
from bot.engine.ports import Clock
from bot.engine.runtime import Engine
from bot.engine.secrets_box import mask_text
from bot.engine.state import Owner
from bot.engine.store import ConversationStore, QueuedReply
from bot.errors import SealbotError
from bot.support import audit
from bot.support.feed import InboxFeed
from bot.support.hours import OfficeHours
from bot.support.models import CannedAnswer, SupportTicket, TicketReason, TicketState
from bot.support.quota import ChannelQuota, QuotaLeft
from bot.support.relay import DeskNote, DeskRelay, NoteKind
from bot.support.settings import SupportSettings

if TYPE_CHECKING:
    from bot.support.telegram_desk import TelegramDesk

log = logging.getLogger("sealbot.support")

# Words with which a queued user leaves the queue (the bot is silent while they wait).
LEAVE_QUEUE_TOKENS = frozenset({"@cancel", "@menu"})


class DeskError(SealbotError):
    """A staff action that cannot be done; ``code`` names why, for the console."""

    code = "desk_error"


class NoOpenTicket(DeskError):
    code = "no_open_ticket"


class AlreadyClaimed(DeskError):
    code = "already_claimed"

    def __init__(self, agent: str | None) -> None:
        super().__init__(f"claimed by {agent}")
        self.agent = agent


class NotYourConversation(DeskError):
    code = "not_your_conversation"


class UnknownConversation(DeskError):
    code = "unknown_conversation"


class UnknownCannedAnswer(DeskError):
    code = "unknown_canned_answer"


@dataclass(frozen=True)
class TimeoutReport:
    escalated: list[str] = field(default_factory=list)
    handed_back: list[str] = field(default_factory=list)


class SupportDesk:
    def __init__(
        self,
        *,
        engine: Engine,
        store: ConversationStore,
        db: AsyncEngine,
        settings: SupportSettings,
        clock: Clock,
        quotas: Mapping[str, ChannelQuota] | None = None,
        feed: InboxFeed | None = None,
    ) -> None:
        """``feed`` refreshes inbox pages; give it the event bus so every worker's pages do."""
        self.engine = engine
        self.store = store
        self.settings = settings
        self.clock = clock
        self.sessions = async_sessionmaker(db, expire_on_commit=False)
        self.feed = feed or InboxFeed()
        self.relays: list[DeskRelay] = []
        self.quotas: dict[str, ChannelQuota] = dict(quotas or {})
        self._wake_after_commit = False
        # The Telegram staff group desk, when installed (it is also in ``relays``).
        self.telegram: TelegramDesk | None = None
        # The console's routes, once ``bot.support.wiring.install_support`` built them.
        self.router: APIRouter | None = None
        self.hours = OfficeHours(
            zone=settings.zone,
            opens=settings.office_opens,
            closes=settings.office_closes,
            days=settings.office_days,
        )

    def now(self) -> datetime:
        now: datetime = self.clock.now()
        return now

    # ---- engine hooks (called under the conversation's lock) ------------------------------------

    def after_commit(self, _messages: Sequence[OutboundMessage]) -> None:
        """Registered in ``EngineHooks.after_commit``: inbox pages refresh once the user's
        message to staff is committed (a refresh from inside the hook would not see it)."""
        if self._wake_after_commit:
            self._wake_after_commit = False
            self.feed.changed()

    async def on_handoff(self, ctx: Ctx) -> None:
        """The user asked for a human: queue the conversation and tell them what to expect.

        With WeChat's own 客服 system chosen, the WeChat receiver answers with the transfer
        alone: no ticket here (staff of that system answer) and no queue text of ours."""
        if self.transfers_to_wechat_kf(ctx.key):
            # The engine's own "transferring you" notice is dropped too: the transfer is the
            # answer, and WeChat's 客服 greets the user itself.
            waiting = ctx.t("engine.handoff_waiting")
            ctx.replies[:] = [r for r in ctx.replies if r.reply.text != waiting]
            return
        run = ctx.state.run
        reason = (
            TicketReason.FAILURES if run and run.failures >= FAILURES_BEFORE_HUMAN else TicketReason.ASKED
        )
        now = ctx.now
        ticket, created = await self._open_ticket(
            ctx.key, reason, now, flow=run.flow if run else None, step=run.step if run else None
        )
        # Said on every run of the hook: after a write conflict the engine runs it again, and
        # what the first run said was never committed.
        ctx.say_text(self._wait_text(ctx, await self._queue_position(ticket)), origin=Origin.SYSTEM)
        if created:
            self.feed.changed()
            await self._relay(DeskNote(ctx.key, NoteKind.OPENED, text=self._summary_line(ctx)))

    async def on_message_for_staff(self, ctx: Ctx) -> None:
        inbound = ctx.inbound
        if inbound is None:
            return
        now = ctx.now
        key = str(ctx.key)
        async with self.sessions() as session, session.begin():
            ticket = await self._open(session, key)
            if ticket is None:
                # Staff own it but no ticket is open (set from elsewhere): open one so the
                # message is seen.
                ticket = self._new_ticket(ctx.key, TicketReason.ASKED, now, TicketState.WAITING)
                session.add(ticket)
                if not Owner.is_bot(ctx.state.owner) and ctx.state.owner.startswith(Owner.STAFF_PREFIX):
                    ticket.state = TicketState.CLAIMED
                    ticket.agent = ctx.state.owner[len(Owner.STAFF_PREFIX) :]
                    ticket.claimed_at = now
            if ticket.state == TicketState.WAITING and self._leaves_queue(inbound.kind, inbound.text):
                # The bot is silent while the user waits: "取消"/"菜单" is their way out.
                ticket.state = TicketState.RESOLVED
                ticket.resolved_at = now
                ticket.resolution = "user_left"
                audit.record(
                    session,
                    actor=audit.USER_ACTOR,
                    action="leave_queue",
                    conversation=key,
                    at=now,
                    before={"owner": ctx.state.owner},
                    after={"owner": Owner.BOT},
                )
                ctx.state.owner = Owner.BOT
                ctx.say_text(ctx.t("support.left_queue"), origin=Origin.SYSTEM)
                if ctx.state.run is not None:
                    await self.engine.interpreter.reprompt(ctx)
                else:
                    home = Inbound.command(ctx.key, inbound.message_id, "menu", at=inbound.at)
                    await self.engine.interpreter.on_user_input(ctx, home)
                left = True
            else:
                ticket.last_user_at = now
                if ticket.awaiting_since is None:
                    ticket.awaiting_since = now
                left = False
        # The message is committed after this hook returns: wake the inbox pages then.
        self._wake_after_commit = True
        if left:
            await self._relay(DeskNote(ctx.key, NoteKind.HANDED_BACK, agent=None, text="user_left"))
        else:
            # Masked as the console's transcript masks it: every staff view shows the same text.
            await self._relay(
                DeskNote(ctx.key, NoteKind.USER, text=mask_text(inbound.text), file=inbound.file)
            )

    @staticmethod
    def _leaves_queue(kind: InboundKind, text: str) -> bool:
        if kind is InboundKind.COMMAND:
            return text.lstrip("/").lower() in {"cancel", "menu", "start"}
        if kind is InboundKind.TEXT:
            return nav_token(text) in LEAVE_QUEUE_TOKENS
        return False

    # ---- staff actions ----------------------------------------------------------------------

    async def claim(self, key: ConversationKey, agent: str) -> SupportTicket:
        """Take a queued conversation; ``AlreadyClaimed`` when another agent was faster."""
        now = self.now()
        async with self.sessions() as session, session.begin():
            ticket = await self._open(session, str(key))
            if ticket is None:
                raise NoOpenTicket(str(key))
            result = await session.execute(
                sa.update(SupportTicket)
                .where(SupportTicket.id == ticket.id, SupportTicket.state == TicketState.WAITING)
                .values(state=TicketState.CLAIMED, agent=agent, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(result) != 1:
                await session.refresh(ticket)
                if ticket.state == TicketState.CLAIMED and ticket.agent == agent:
                    return ticket  # a double click: already yours
                raise AlreadyClaimed(ticket.agent)
            audit.record(
                session,
                actor=agent,
                action="claim",
                conversation=str(key),
                at=now,
                before={"owner": Owner.WAITING},
                after={"owner": Owner.staff(agent)},
            )
            await session.refresh(ticket)
        await self.engine.set_owner(key, Owner.staff(agent), notice="support.staff_joined")
        self.feed.changed()
        await self._relay(DeskNote(key, NoteKind.CLAIMED, agent=agent))
        return ticket

    async def take_over(self, key: ConversationKey, agent: str) -> SupportTicket:
        """Staff pick up a conversation from the console, whether or not the user asked."""
        row = await self.store.get(key)
        if row is None:
            raise UnknownConversation(str(key))
        if await self._open_ticket_of(key) is not None:
            return await self.claim(key, agent)  # queued already: the same race as a claim
        now = self.now()
        run = self.engine.codec.load(row.state).run
        async with self.sessions() as session:
            try:
                async with session.begin():
                    ticket = self._new_ticket(key, TicketReason.PICKED_UP, now, TicketState.CLAIMED)
                    ticket.agent, ticket.claimed_at = agent, now
                    ticket.flow, ticket.step = (run.flow, run.step) if run else (None, None)
                    session.add(ticket)
                    audit.record(
                        session,
                        actor=agent,
                        action="take_over",
                        conversation=str(key),
                        at=now,
                        before={"owner": row.owner},
                        after={"owner": Owner.staff(agent)},
                    )
            except IntegrityError:
                # The user asked for a human (or another agent picked it up) a moment ago.
                return await self.claim(key, agent)
        await self.engine.set_owner(key, Owner.staff(agent), notice="support.staff_joined")
        self.feed.changed()
        await self._relay(DeskNote(key, NoteKind.CLAIMED, agent=agent))
        return ticket

    async def release(self, key: ConversationKey, agent: str) -> None:
        """Put the conversation back in the queue for another agent."""
        now = self.now()
        async with self.sessions() as session, session.begin():
            ticket = await self._require_open(session, key)
            result = await session.execute(
                sa.update(SupportTicket)
                .where(
                    SupportTicket.id == ticket.id,
                    SupportTicket.state == TicketState.CLAIMED,
                    SupportTicket.agent == agent,
                )
                .values(state=TicketState.WAITING, agent=None, awaiting_since=now, escalated_at=None)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(result) != 1:
                raise NotYourConversation(str(key))
            audit.record(
                session,
                actor=agent,
                action="release",
                conversation=str(key),
                at=now,
                before={"owner": Owner.staff(agent)},
                after={"owner": Owner.WAITING},
            )
        await self.engine.set_owner(key, Owner.WAITING, notice="support.staff_released")
        self.feed.changed()
        await self._relay(DeskNote(key, NoteKind.RELEASED, agent=agent))

    async def assign(self, key: ConversationKey, to_agent: str, *, by: str, force: bool = False) -> None:
        """Give the conversation to ``to_agent``: a queued one, or one ``by`` holds (or any,
        with ``force``, for admins)."""
        now = self.now()
        async with self.sessions() as session, session.begin():
            ticket = await self._require_open(session, key)
            before_agent = ticket.agent
            allowed = (
                sa.true()
                if force
                else sa.or_(SupportTicket.state == TicketState.WAITING, SupportTicket.agent == by)
            )
            result = await session.execute(
                sa.update(SupportTicket)
                .where(SupportTicket.id == ticket.id, SupportTicket.state != TicketState.RESOLVED, allowed)
                .values(state=TicketState.CLAIMED, agent=to_agent, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(result) != 1:
                raise NotYourConversation(str(key))
            before_owner = Owner.staff(before_agent) if before_agent else Owner.WAITING
            audit.record(
                session,
                actor=by,
                action="assign",
                conversation=str(key),
                at=now,
                before={"owner": before_owner},
                after={"owner": Owner.staff(to_agent)},
            )
        await self.engine.set_owner(key, Owner.staff(to_agent), notice="support.staff_joined")
        self.feed.changed()
        await self._relay(DeskNote(key, NoteKind.CLAIMED, agent=to_agent))

    async def reply(
        self,
        key: ConversationKey,
        agent: str,
        reply: Reply,
        *,
        source: str = "console",
        dedupe_id: str | None = None,
    ) -> list[OutboundMessage]:
        """Send a staff message (text, file, canned answer) to the user in their channel.
        ``dedupe_id`` (a Telegram update id, say) makes a redelivered staff message a no-op."""
        now = self.now()
        if dedupe_id is not None:
            snapshot = await self.store.load(key, dedupe_id)
            if snapshot.duplicate_of is not None:
                return await self.store.outbound(snapshot.duplicate_of)
        async with self.sessions() as session, session.begin():
            ticket = await self._require_open(session, key)
            if ticket.state != TicketState.CLAIMED or ticket.agent != agent:
                raise NotYourConversation(str(key))
        if dedupe_id is None:
            messages = await self.engine.staff_say(key, reply)
        else:

            async def say(ctx: Ctx) -> None:
                ctx.replies.append(QueuedReply(reply, Origin.STAFF))

            messages = await self.engine.push(key, say, dedupe_id=dedupe_id)
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.update(SupportTicket)
                .where(SupportTicket.id == ticket.id)
                .values(last_staff_at=now, awaiting_since=None)
                .execution_options(synchronize_session=False)
            )
            after: dict[str, Any] = {"kind": reply.kind.value, "text": mask_text(reply.text)}
            if reply.file is not None:
                after["file"] = reply.file.to_dict()
            after["outbox_ids"] = [m.outbox_id for m in messages]
            audit.record(
                session, actor=agent, action="staff_message", conversation=str(key), at=now, after=after
            )
        self.feed.changed()
        await self._relay(
            DeskNote(key, NoteKind.STAFF, text=reply.text, agent=agent, file=reply.file, source=source)
        )
        return messages

    async def reply_text(
        self,
        key: ConversationKey,
        agent: str,
        text: str,
        *,
        source: str = "console",
        dedupe_id: str | None = None,
    ) -> None:
        await self.reply(key, agent, Reply.text_reply(text), source=source, dedupe_id=dedupe_id)

    async def reply_file(
        self,
        key: ConversationKey,
        agent: str,
        file: FileRef,
        caption: str = "",
        *,
        source: str = "console",
        dedupe_id: str | None = None,
    ) -> None:
        kind = ReplyKind.IMAGE if file.content_type.startswith("image/") else ReplyKind.FILE
        await self.reply(key, agent, Reply(kind, text=caption, file=file), source=source, dedupe_id=dedupe_id)

    async def reply_canned(self, key: ConversationKey, agent: str, canned_id: int) -> None:
        async with self.sessions() as session:
            canned = await session.get(CannedAnswer, canned_id)
        if canned is None or not canned.active:
            raise UnknownCannedAnswer(str(canned_id))
        await self.reply(key, agent, Reply.text_reply(canned.text))

    async def hand_back(
        self,
        key: ConversationKey,
        agent: str,
        *,
        resolution: str = "handed_back",
        notice: str = "support.handed_back",
        force: bool = False,
    ) -> None:
        """Back to the bot, at the step the user was on, with every answer kept: the engine
        re-asks the current step after the notice."""
        await self._close(key, agent, resolution=resolution, notice=notice, force=force)

    async def resolve(self, key: ConversationKey, agent: str, *, force: bool = False) -> None:
        """The matter is settled: the conversation goes back to the bot all the same."""
        await self._close(key, agent, resolution="resolved", notice="support.resolved", force=force)

    async def _close(
        self,
        key: ConversationKey,
        actor: str,
        *,
        resolution: str,
        notice: str,
        force: bool,
        expect: SupportTicket | None = None,
    ) -> bool:
        now = self.now()
        async with self.sessions() as session, session.begin():
            ticket = await self._require_open(session, key)
            conditions: list[sa.ColumnElement[bool]] = [
                SupportTicket.id == ticket.id,
                SupportTicket.state != TicketState.RESOLVED,
            ]
            if not force:
                # Yours, or a queued one nobody holds.
                conditions.append(
                    sa.or_(SupportTicket.agent == actor, SupportTicket.state == TicketState.WAITING)
                )
            if expect is not None:
                # A timeout closes only if nothing happened since it looked.
                conditions += [
                    _same(SupportTicket.last_user_at, expect.last_user_at),
                    _same(SupportTicket.last_staff_at, expect.last_staff_at),
                    _same(SupportTicket.claimed_at, expect.claimed_at),
                ]
            result = await session.execute(
                sa.update(SupportTicket)
                .where(*conditions)
                .values(state=TicketState.RESOLVED, resolved_at=now, resolution=resolution)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(result) != 1:
                if expect is not None:
                    return False
                raise NotYourConversation(str(key))
            before_owner = Owner.staff(ticket.agent) if ticket.agent else Owner.WAITING
            audit.record(
                session,
                actor=actor,
                action=resolution,
                conversation=str(key),
                at=now,
                before={"owner": before_owner},
                after={"owner": Owner.BOT},
            )
        # Bot messages held while staff owned the conversation are stale: drop them for good.
        await self.store.release_held(key)
        await self.engine.set_owner(key, Owner.BOT, notice=notice)
        self.feed.changed()
        await self._relay(DeskNote(key, NoteKind.HANDED_BACK, agent=ticket.agent, text=resolution))
        return True

    # ---- canned answers ---------------------------------------------------------------------

    async def canned_answers(self) -> list[CannedAnswer]:
        async with self.sessions() as session:
            rows = await session.scalars(
                sa.select(CannedAnswer).where(CannedAnswer.active.is_(True)).order_by(CannedAnswer.title)
            )
            return list(rows)

    async def add_canned(self, title: str, text: str, *, by: str) -> CannedAnswer:
        now = self.now()
        async with self.sessions() as session, session.begin():
            canned = CannedAnswer(
                title=title.strip()[:80], text=text.strip(), created_by=by, created_at=now, active=True
            )
            session.add(canned)
            audit.record(
                session,
                actor=by,
                action="canned_add",
                conversation="-",
                at=now,
                after={"title": canned.title},
            )
        return canned

    async def retire_canned(self, canned_id: int, *, by: str) -> None:
        now = self.now()
        async with self.sessions() as session, session.begin():
            canned = await session.get(CannedAnswer, canned_id)
            if canned is None:
                raise UnknownCannedAnswer(str(canned_id))
            canned.active = False
            audit.record(
                session,
                actor=by,
                action="canned_retire",
                conversation="-",
                at=now,
                before={"title": canned.title},
            )

    # ---- timeouts ----------------------------------------------------------------------------

    async def check_timeouts(self, now: datetime | None = None) -> TimeoutReport:
        """Escalate unanswered users (N minutes) and hand idle conversations back (M minutes).
        Safe to call from several workers: each effect is a conditional update."""
        now = now or self.now()
        report = TimeoutReport()
        escalate_before = now - timedelta(minutes=self.settings.escalation_minutes)
        idle_before = now - timedelta(minutes=self.settings.idle_handback_minutes)
        for ticket in await self._open_tickets():
            key = ConversationKey.parse(ticket.conversation)
            if ticket.state == TicketState.CLAIMED and ticket.last_activity <= idle_before:
                if await self._close(
                    key,
                    audit.SYSTEM_ACTOR,
                    resolution="idle",
                    notice="support.idle_handed_back",
                    force=True,
                    expect=ticket,
                ):
                    report.handed_back.append(ticket.conversation)
                continue
            pending = ticket.awaiting_since
            if pending is None or pending > escalate_before:
                continue
            if ticket.escalated_at is not None and ticket.escalated_at >= pending:
                continue  # this wait was escalated already
            if await self._escalate(key, ticket, now):
                report.escalated.append(ticket.conversation)
        return report

    async def run_timeouts(self) -> None:
        """A loop for the service's background tasks, until cancelled (the scheduler may call
        ``check_timeouts`` itself instead)."""
        while True:
            try:
                await self.check_timeouts()
            except Exception:  # one bad round must not end the loop
                log.exception("support timeout round failed")
            await asyncio.sleep(self.settings.timer_poll_seconds)

    async def _escalate(self, key: ConversationKey, ticket: SupportTicket, now: datetime) -> bool:
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                sa.update(SupportTicket)
                .where(
                    SupportTicket.id == ticket.id,
                    SupportTicket.state != TicketState.RESOLVED,
                    _same(SupportTicket.escalated_at, ticket.escalated_at),
                    _same(SupportTicket.awaiting_since, ticket.awaiting_since),
                )
                .values(escalated_at=now)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(result) != 1:
                return False
            waited = int((now - (ticket.awaiting_since or now)).total_seconds() // 60)
            audit.record(
                session,
                actor=audit.SYSTEM_ACTOR,
                action="escalate",
                conversation=ticket.conversation,
                at=now,
                after={"waited_minutes": waited, "agent": ticket.agent},
            )
        position = await self._queue_position(ticket)

        async def tell(ctx: Ctx) -> None:
            ctx.say_text(self._wait_text(ctx, position, still=True), origin=Origin.SYSTEM)

        assert ticket.awaiting_since is not None
        await self.engine.push(
            key, tell, dedupe_id=f"support-escalate:{ticket.id}:{ticket.awaiting_since.isoformat()}"
        )
        self.feed.changed()
        await self._relay(DeskNote(key, NoteKind.ESCALATED, agent=ticket.agent, text=str(waited)))
        return True

    # ---- queries -----------------------------------------------------------------------------

    async def open_tickets(self) -> list[SupportTicket]:
        """The inbox: escalated first, then oldest first."""
        tickets = await self._open_tickets()
        return sorted(tickets, key=lambda t: (t.escalated_at is None, t.created_at))

    async def recent_tickets(self, limit: int = 30) -> list[SupportTicket]:
        async with self.sessions() as session:
            rows = await session.scalars(
                sa.select(SupportTicket)
                .where(SupportTicket.state == TicketState.RESOLVED)
                .order_by(SupportTicket.resolved_at.desc())
                .limit(limit)
            )
            return list(rows)

    async def ticket_of(self, key: ConversationKey) -> SupportTicket | None:
        return await self._open_ticket_of(key)

    async def audit_of(self, key: ConversationKey) -> list[Any]:
        """What was done in a conversation (reads are on the admins' audit page)."""
        async with self.sessions() as session:
            return list(await audit.entries(session, conversation=str(key), reads=False))

    async def record_read(
        self, actor: str, key: ConversationKey, action: str, what: dict[str, Any] | None = None
    ) -> None:
        """A staff member read a conversation's personal data; a transcript refresh of a page
        that staff member opened moments ago is the same read (``audit.LIVE_VIEW``)."""
        now = self.now()
        async with self.sessions() as session, session.begin():
            if action == audit.READ_TRANSCRIPT and await audit.read_since(
                session, actor=actor, conversation=str(key), since=now - audit.LIVE_VIEW
            ):
                return
            audit.record(session, actor=actor, action=action, conversation=str(key), at=now, after=what)

    async def audit_search(
        self, *, actor: str | None = None, action: str | None = None, conversation: str | None = None
    ) -> list[Any]:
        async with self.sessions() as session:
            return list(await audit.search(session, actor=actor, action=action, conversation=conversation))

    async def quota_of(self, key: ConversationKey) -> QuotaLeft | None:
        quota = self.quotas.get(key.channel)
        return await quota.remaining(key, self.now()) if quota is not None else None

    def transfers_to_wechat_kf(self, key: ConversationKey) -> bool:
        """Whether a WeChat hand-off goes to WeChat's own 客服 system (the channel then answers
        the user's request with ``transfer_customer_service``) instead of this inbox."""
        return key.channel == "wechat" and self.settings.wechat_kf_transfer

    # ---- internals ---------------------------------------------------------------------------

    async def _relay(self, note: DeskNote) -> None:
        for relay in self.relays:
            try:
                await relay.note(note)
            except Exception:  # a second desk must never break the conversation
                log.exception("desk relay %s failed on %s", relay.name, note.kind)

    def _new_ticket(self, key: ConversationKey, reason: str, now: datetime, state: str) -> SupportTicket:
        return SupportTicket(
            conversation=str(key),
            channel=key.channel,
            state=state,
            reason=reason,
            created_at=now,
            last_user_at=now if reason != TicketReason.PICKED_UP else None,
            awaiting_since=now if reason != TicketReason.PICKED_UP else None,
        )

    async def _open_ticket(
        self, key: ConversationKey, reason: str, now: datetime, *, flow: str | None, step: str | None
    ) -> tuple[SupportTicket, bool]:
        """The conversation's open ticket, opening one if needed. Idempotent: the engine may
        run the hook again after a write conflict."""
        for _ in range(2):
            async with self.sessions() as session:
                try:
                    async with session.begin():
                        existing = await self._open(session, str(key))
                        if existing is not None:
                            return existing, False
                        ticket = self._new_ticket(key, reason, now, TicketState.WAITING)
                        ticket.flow, ticket.step = flow, step
                        session.add(ticket)
                        audit.record(
                            session,
                            actor=audit.USER_ACTOR,
                            action="handoff",
                            conversation=str(key),
                            at=now,
                            before={"owner": Owner.BOT},
                            after={"owner": Owner.WAITING, "reason": reason},
                        )
                    return ticket, True
                except IntegrityError:
                    continue  # another worker opened it a moment ago: read theirs
        existing_ticket = await self._open_ticket_of(key)
        if existing_ticket is None:
            raise NoOpenTicket(str(key))
        return existing_ticket, False

    @staticmethod
    async def _open(session: AsyncSession, key: str) -> SupportTicket | None:
        ticket: SupportTicket | None = await session.scalar(
            sa.select(SupportTicket).where(
                SupportTicket.conversation == key, SupportTicket.state != TicketState.RESOLVED
            )
        )
        return ticket

    async def _require_open(self, session: AsyncSession, key: ConversationKey) -> SupportTicket:
        ticket = await self._open(session, str(key))
        if ticket is None:
            raise NoOpenTicket(str(key))
        return ticket

    async def _open_ticket_of(self, key: ConversationKey) -> SupportTicket | None:
        async with self.sessions() as session:
            return await self._open(session, str(key))

    async def _open_tickets(self) -> list[SupportTicket]:
        async with self.sessions() as session:
            rows = await session.scalars(
                sa.select(SupportTicket)
                .where(SupportTicket.state != TicketState.RESOLVED)
                .order_by(SupportTicket.created_at)
            )
            return list(rows)

    async def _queue_position(self, ticket: SupportTicket) -> int:
        """1 for the first in the queue; claimed conversations are not waiting for anyone."""
        if ticket.state == TicketState.CLAIMED:
            return 0
        async with self.sessions() as session:
            ahead = await session.scalar(
                sa.select(sa.func.count())
                .select_from(SupportTicket)
                .where(
                    SupportTicket.state == TicketState.WAITING,
                    SupportTicket.id < ticket.id,  # ids grow in the order tickets opened
                )
            )
        return int(ahead or 0) + 1

    def _wait_text(self, ctx: Ctx, position: int, *, still: bool = False) -> str:
        now = ctx.now
        if not self.hours.is_open(now):
            back = self.hours.next_opening(now)
            return ctx.t(
                "support.outside_hours", back_at=back.strftime("%m-%d %H:%M"), zone=self.settings.time_zone
            )
        if position <= 0:
            return ctx.t("support.staff_will_answer")
        minutes = position * self.settings.minutes_per_conversation
        return ctx.t(
            "support.still_waiting" if still else "support.expected_wait", position=position, minutes=minutes
        )

    def _summary_line(self, ctx: Ctx) -> str:
        run = ctx.state.run
        if run is None:
            return ""
        flow = self.engine.flows.get(run.flow)
        title = ctx.t(flow.title) if flow else run.flow
        return f"{title} / {run.step}"


def _same(column: Any, value: datetime | None) -> sa.ColumnElement[bool]:
    result: sa.ColumnElement[bool] = column.is_(None) if value is None else column == value
    return result


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


__all__: Sequence[str] = [
    "AlreadyClaimed",
    "DeskError",
    "NoOpenTicket",
    "NotYourConversation",
    "SupportDesk",
    "TimeoutReport",
    "UnknownCannedAnswer",
    "UnknownConversation",
]
