"""The expiry-reminder job: plan what fell due, send it once, record what became of it.

One pass (``run_once``) has three parts, each safe to run in several workers at once:

1. plan: ask the platform for the seals whose reminders fell due since the last pass, and for
   the seals that changed since then (imported, renewed, given a new expiry), with a full pass
   over the due window now and then, on first start and whenever the thresholds change; claim
   the most urgent due reminder of each (``DeliveryStore.claim``: a UNIQUE row, so once per
   seal, threshold and valid_to whatever the number of workers);
2. send: lease due rows and walk the account's reminder policy (``settings.channels`` narrowed
   by the user's choice): the chat identity used last when it can reach them now (through the
   outbox, or a WeChat subscription / template message through ``ProactiveDelivery``), then
   SMS to the account's phone, then e-mail. Nothing is sent if the seal was renewed or
   cancelled meanwhile or the user opted out; quiet hours defer, staff owning the chat
   re-plans. Every refusal is kept in the reason with the next channel tried;
3. sync: copy the outbox's outcome of queued reminders back: sent, or (parked until the user
   writes, refused) re-planned to go on with the next channel, or (held by a takeover)
   re-planned for later.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.engine.context import Ctx
from bot.engine.i18n import Translator
from bot.engine.messages import ConversationKey
from bot.engine.ports import Clock
from bot.engine.runtime import Engine
from bot.engine.state import Owner
from bot.engine.store import ConversationStore
from bot.errors import DeliveryFailed, SealbotError
from platform_client.errors import PlatformClientError
from platform_client.reminders import ExpiringSeal, RemindersAPI, SealState
from scheduler.deliveries import Claim, Delivery, DeliveryStore, Status
from scheduler.message import ReminderFacts, compose, compose_mail
from scheduler.metrics import MetricsRegistry
from scheduler.planner import ReminderSchedule
from scheduler.proactive import ProactiveDelivery, Reach, ReminderMail, ReminderSms
from scheduler.quiet_hours import SendWindow
from scheduler.settings import CHANNELS, SchedulerSettings

log = logging.getLogger("sealbot.scheduler.reminders")

# Conversation memory written by the reminder settings flow (handlers/reminders.py); the same
# names are spelled there, since handlers do not import the scheduler.
OPT_OUT = "reminders_opt_out"
OPT_OUT_AT = "reminders_opt_out_at"
CHOSEN_CHANNELS = "reminders_channels"
CHOSEN_AT = "reminders_channels_at"

PLANNED_UNTIL = "scheduler.reminders.planned_until"
FULL_SWEEP_AT = "scheduler.reminders.full_sweep_at"
THRESHOLDS_SEEN = "scheduler.reminders.thresholds."
LIVE_SEAL_STATUSES = frozenset({"active", "locked", "expired"})


@dataclass
class PassReport:
    planned: int = 0
    full_sweep: bool = False
    outcomes: Counter[str] = field(default_factory=Counter)
    synced: int = 0
    # One line per decision of this pass, for ``sealbot reminders run-now``.
    decisions: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.planned + sum(self.outcomes.values()) + self.synced


@dataclass(frozen=True)
class Preferences:
    opted_out: bool
    locale: str
    channels: tuple[str, ...] = CHANNELS


def outcome_of_failure(reason: str | None) -> str:
    """Why a chat channel's final refusal (the outbox keeps only its text) happened, in a word
    for the reason (Telegram's sender says ``telegram refused: Forbidden: bot was blocked by the
    user``; WeChat answers 43004 when the user unfollowed)."""
    text = (reason or "").lower()
    if any(word in text for word in ("blocked", "refused", "forbidden", "deactivated", "43004", "unfollow")):
        return "blocked"
    if any(word in text for word in ("consent", "subscri", "45015")):
        return "no consent"
    return "failed"


async def read_preferences(store: ConversationStore, keys: Sequence[ConversationKey]) -> Preferences:
    """The account's choices across its identities (the most recent opt-out/opt-in and the most
    recent choice of channels win), and the language of the identity used last (the first)."""
    opted_out, decided_at = False, ""
    channels, chosen_at = CHANNELS, ""
    locale = "zh-CN"
    for index, key in enumerate(keys):
        row = await store.get(key)
        if row is None:
            continue
        memory = row.state.get("memory") or {}
        at = str(memory.get(OPT_OUT_AT) or "")
        if OPT_OUT in memory and at >= decided_at:
            opted_out, decided_at = bool(memory[OPT_OUT]), at
        at = str(memory.get(CHOSEN_AT) or "")
        chosen = memory.get(CHOSEN_CHANNELS)
        if isinstance(chosen, list) and at >= chosen_at:
            channels, chosen_at = tuple(c for c in CHANNELS if c in chosen), at
        if index == 0:
            locale = row.state.get("locale") or locale
    return Preferences(opted_out=opted_out, locale=locale, channels=channels)


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class _Sent:
    channel: str
    message_id: str
    route: str
    channel_key: str | None = None


@dataclass(frozen=True)
class _Queued:
    outbox_id: int
    channel_key: str


class _OptedOut(Exception):
    """The user opted out between the check and the send (read again under the lock)."""


class ReminderJob:
    def __init__(
        self,
        *,
        platform: RemindersAPI,
        engine: Engine,
        deliveries: DeliveryStore,
        settings: SchedulerSettings,
        clock: Clock,
        proactive: Mapping[str, ProactiveDelivery] | None = None,
        sms: ReminderSms | None = None,
        mail: ReminderMail | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.platform = platform
        self.engine = engine
        self.store = engine.store
        self.deliveries = deliveries
        self.settings = settings
        self.clock = clock
        self.proactive = dict(proactive or {})
        self.sms = sms
        self.mail = mail
        self.metrics = metrics or MetricsRegistry()
        self.schedule = ReminderSchedule.from_settings(settings)
        self.window = SendWindow.from_settings(settings)
        self.zone = self.window.zone(None)
        self._decisions: list[str] | None = None

    async def run_once(self, *, explain: bool = False) -> PassReport:
        report = PassReport()
        self._decisions = report.decisions if explain else None
        try:
            now = self.clock.now()
            report.planned, report.full_sweep = await self.plan(now)
            while True:
                outcomes = await self.send_due(self.clock.now())
                report.outcomes.update(outcomes)
                if sum(outcomes.values()) < self.settings.batch:
                    break
            report.synced = await self.sync_outbox(self.clock.now())
        finally:
            self._decisions = None
        for status, n in report.outcomes.items():
            self.metrics.incr(f"reminders_{status}", n)
        return report

    def _decide(self, delivery: Delivery, text: str) -> None:
        line = f"{delivery.seal_name} ({delivery.seal_id}) {delivery.threshold}: {text}"
        log.info("reminder %s: %s", delivery.id, line)
        if self._decisions is not None:
            self._decisions.append(line)

    # ---- 1. plan ---------------------------------------------------------------------------

    def _thresholds_cursor(self) -> str:
        rules = f"{self.schedule.thresholds}|{self.schedule.after_expiry_grace}"
        return THRESHOLDS_SEEN + hashlib.sha256(rules.encode()).hexdigest()[:16]

    async def plan(self, now: datetime) -> tuple[int, bool]:
        """Claim the reminders that fell due; returns (claims made, whether it was a full pass).

        The watermark moves only after a complete pass, so a pass that fails half way is
        simply repeated (claims are idempotent). Between full passes, the seals that changed
        since the last pass are read too: a seal imported or given a new expiry is planned on
        the next pass (every minute), not at the next daily sweep; so is every seal after the
        thresholds change."""
        last = await self.store.cursor(PLANNED_UNTIL)
        swept = await self.store.cursor(FULL_SWEEP_AT)
        rules_seen = await self.store.cursor(self._thresholds_cursor())
        full = (
            last == 0
            or rules_seen == 0
            or now - _from_epoch(swept) >= timedelta(hours=self.settings.full_sweep_hours)
        )
        queries: list[tuple[datetime, datetime, datetime | None]] = []
        if full:
            lo, hi = self.schedule.window(now)
            queries.append((lo, hi, None))
        else:
            # Never look back further than the whole window: older crossings cannot be due.
            since = max(_from_epoch(last), now - self.schedule.horizon - self.schedule.lookback)
            queries.extend((lo, hi, None) for lo, hi in self.schedule.crossing_ranges(since, now))
            lo, hi = self.schedule.window(now)
            # A second of overlap: a seal changed in the same second as the last pass is read
            # again (claims are idempotent) rather than missed.
            queries.append((lo, hi, _from_epoch(last) - timedelta(seconds=1)))
        claimed = 0
        batch: list[Claim] = []
        for lo, hi, changed_since in queries:
            async for seal in self.platform.iter_expiring_seals(
                until=hi, since=lo, page_size=self.settings.page_size, changed_since=changed_since
            ):
                claim = self._claim_for(seal, now)
                if claim is not None:
                    batch.append(claim)
                if len(batch) >= self.settings.page_size:
                    claimed += len(await self.deliveries.claim(batch, now))
                    batch = []
        claimed += len(await self.deliveries.claim(batch, now))
        await self.store.set_cursor(PLANNED_UNTIL, _epoch(now), now)
        if full:
            await self.store.set_cursor(FULL_SWEEP_AT, _epoch(now), now)
            await self.store.set_cursor(self._thresholds_cursor(), 1, now)
        log.info("reminder planning: %d new claims (%s pass)", claimed, "full" if full else "incremental")
        return claimed, full

    def _claim_for(self, seal: ExpiringSeal, now: datetime) -> Claim | None:
        threshold = self.schedule.most_urgent_due(seal.valid_to, now)
        if threshold is None:
            return None
        return Claim(
            seal_id=seal.seal_id,
            threshold=threshold,
            valid_to=seal.valid_to,
            account_id=seal.account_id,
            seal_kind=seal.kind,
            seal_name=seal.name,
            due_at=self.schedule.due_at(seal.valid_to, threshold),
        )

    # ---- 2. send ---------------------------------------------------------------------------

    async def send_due(self, now: datetime) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        leased = await self.deliveries.lease_due(
            now, limit=self.settings.batch, lease_until=now + self.settings.lease
        )
        if not leased:
            return outcomes
        try:
            states = await self.platform.seal_states([d.seal_id for d in leased])
        except PlatformClientError as exc:
            # Not the reminder's fault: it waits without using up its attempts.
            log.warning("seal states unavailable, %d reminders wait: %s", len(leased), exc)
            later = now + timedelta(seconds=self.settings.backoff_base_seconds)
            for delivery in leased:
                await self.deliveries.postpone(
                    delivery.id, delivery.status, later, now, error=f"platform: {exc.code}"
                )
                outcomes[delivery.status] += 1
            return outcomes
        for delivery in leased:
            try:
                status = await self._deliver(delivery, states.get(delivery.seal_id), now)
            except (SealbotError, PlatformClientError) as exc:
                log.warning("reminder %s failed: %r", delivery.id, exc)
                status = await self._retry(delivery, now, repr(exc))
            outcomes[status] += 1
        return outcomes

    async def _deliver(self, delivery: Delivery, seal: SealState | None, now: datetime) -> str:
        if seal is None or seal.status not in LIVE_SEAL_STATUSES or seal.valid_to != delivery.valid_to:
            # Renewed (a new valid_to starts a new cycle) or cancelled since it was planned.
            return await self._finish(delivery, Status.SUPERSEDED, now, "seal renewed or cancelled")
        if not self.schedule.is_live(delivery.valid_to, delivery.threshold, now):
            return await self._finish(delivery, Status.SUPERSEDED, now, "no longer due")
        keys = await self.store.keys_for_account(delivery.account_id)
        preferences = await read_preferences(self.store, keys)
        if preferences.opted_out:
            return await self._finish(delivery, Status.OPTED_OUT, now, "the user turned reminders off")
        if not self.window.is_open(now, None):
            opens = self.window.next_open(now, None)
            await self.deliveries.postpone(delivery.id, Status.DEFERRED, opens, now, error="quiet hours")
            self._decide(delivery, f"deferred until {opens.isoformat()}: quiet hours")
            return Status.DEFERRED
        if keys and not Owner.is_bot(await self.store.owner_of(keys[0])):
            later = now + timedelta(minutes=self.settings.staff_defer_minutes)
            await self.deliveries.postpone(
                delivery.id, Status.PLANNED, later, now, error="staff own the chat: planned again"
            )
            self._decide(delivery, f"planned again for {later.isoformat()}: staff own the chat")
            return Status.PLANNED
        return await self._walk_policy(delivery, keys, preferences, now)

    def policy(self, preferences: Preferences) -> list[str]:
        """The channels to try, in order: the operator's order, narrowed by the user's choice."""
        return [c for c in self.settings.channels if c in preferences.channels]

    async def _walk_policy(
        self, delivery: Delivery, keys: Sequence[ConversationKey], preferences: Preferences, now: datetime
    ) -> str:
        tried = list(delivery.tried)
        notes: list[str] = [delivery.last_error] if delivery.tried and delivery.last_error else []
        retry_at: datetime | None = None
        for route in self.policy(preferences):
            if route in tried:
                continue
            try:
                result = await self._send_by(route, delivery, keys, preferences, now)
            except _OptedOut:
                return await self._finish(delivery, Status.OPTED_OUT, now, "the user turned reminders off")
            except DeliveryFailed as exc:
                note = f"{route}: {exc.reason}"
                if exc.retry_after is not None and exc.retryable:
                    # It can go by this channel later (a daily quota): try the next one now,
                    # and come back to this one if nothing else gets through.
                    at = now + timedelta(seconds=exc.retry_after)
                    retry_at = at if retry_at is None else min(retry_at, at)
                elif exc.retryable and delivery.attempts + 1 < self.settings.max_attempts:
                    self._decide(delivery, f"retry later by {route}: {exc.reason}")
                    return await self._retry(delivery, now, note, tried=tried)
                else:
                    tried.append(route)
                notes.append(note)
                self._decide(delivery, f"{note}; next channel")
                continue
            if isinstance(result, _Queued):
                await self.deliveries.finish(
                    delivery.id,
                    Status.QUEUED,
                    now,
                    error="; ".join(notes) or None,
                    channel_key=result.channel_key,
                    route="outbox",
                    outbox_id=result.outbox_id,
                    tried=tried,
                )
                self._decide(delivery, f"queued for {result.channel_key}")
                return Status.QUEUED
            await self.deliveries.finish(
                delivery.id,
                Status.SENT,
                now,
                error="; ".join(notes) or None,
                channel_key=result.channel_key,
                route=result.route,
                channel=result.channel,
                provider_message_id=result.message_id,
                tried=tried,
            )
            self._decide(delivery, f"sent by {result.channel} ({result.message_id})")
            return Status.SENT
        reason = "; ".join(notes) or "no channel in the reminder policy"
        if retry_at is not None:
            await self.deliveries.postpone(
                delivery.id, Status.DEFERRED, retry_at, now, error=reason, tried=tried
            )
            self._decide(delivery, f"deferred until {retry_at.isoformat()}: {reason}")
            return Status.DEFERRED
        await self.deliveries.finish(delivery.id, Status.UNDELIVERABLE, now, error=reason, tried=tried)
        self._decide(delivery, f"undeliverable: {reason}")
        return Status.UNDELIVERABLE

    async def _send_by(
        self,
        route: str,
        delivery: Delivery,
        keys: Sequence[ConversationKey],
        preferences: Preferences,
        now: datetime,
    ) -> _Sent | _Queued:
        if route == "chat":
            return await self._by_chat(delivery, keys, preferences, now)
        if route == "sms":
            if self.sms is None:
                raise DeliveryFailed("no SMS sender configured", retryable=False)
            message_id = await self.sms.send(delivery.account_id, delivery.seal_id, delivery.threshold)
            return _Sent("sms", message_id, "sms")
        if route == "email":
            if self.mail is None:
                raise DeliveryFailed("no e-mail sender configured", retryable=False)
            t = Translator(self.engine.catalog, preferences.locale)
            subject, text = compose_mail(
                self._facts(delivery),
                t,
                now=now,
                zone=self.zone,
                renewal_window_days=self.settings.renewal_window_days,
            )
            message_id = await self.mail.send(delivery.account_id, delivery.seal_id, subject, text)
            return _Sent("email", message_id, "email")
        raise DeliveryFailed(f"unknown channel {route!r}", retryable=False)

    async def _by_chat(
        self, delivery: Delivery, keys: Sequence[ConversationKey], preferences: Preferences, now: datetime
    ) -> _Sent | _Queued:
        if not keys:
            raise DeliveryFailed("no chat identity bound", retryable=False)
        key = keys[0]  # the identity the user used last: one reminder, not one per identity
        channel = self.proactive.get(key.channel)
        reach = Reach(await channel.reach(key, now)) if channel is not None else Reach.SESSION
        if reach is Reach.NONE:
            raise DeliveryFailed(
                f"{key.channel}: outside the 48-hour window, no subscription consent, no template",
                retryable=False,
            )
        if reach is Reach.NOTICE and channel is not None:
            composed = compose(
                self._facts(delivery),
                Translator(self.engine.catalog, preferences.locale),
                now=now,
                zone=self.zone,
                renewal_window_days=self.settings.renewal_window_days,
            )
            message_id = await channel.send_notice(key, composed.notice)
            return _Sent(key.channel, message_id, "notice", channel_key=str(key))
        return await self._push(delivery, key, now)

    async def _push(self, delivery: Delivery, key: ConversationKey, now: datetime) -> _Queued:
        opted_out = False

        async def say(ctx: Ctx) -> None:
            nonlocal opted_out
            # Read again under the conversation lock: the user may have just opted out.
            if ctx.memory.get(OPT_OUT):
                opted_out = True
                return
            composed = compose(
                self._facts(delivery),
                ctx.t,
                now=ctx.now,
                zone=self.zone,
                renewal_window_days=self.settings.renewal_window_days,
            )
            ctx.say_text(composed.text, options=composed.options)

        messages = await self.engine.push(key, say, dedupe_id=delivery.dedupe_id)
        if opted_out:
            raise _OptedOut
        if not messages:
            raise DeliveryFailed("nothing was queued")
        return _Queued(messages[0].outbox_id, str(key))

    @staticmethod
    def _facts(delivery: Delivery) -> ReminderFacts:
        return ReminderFacts(
            seal_id=delivery.seal_id,
            seal_name=delivery.seal_name,
            seal_kind=delivery.seal_kind,
            threshold=delivery.threshold,
            valid_to=delivery.valid_to,
        )

    async def _finish(self, delivery: Delivery, status: str, now: datetime, error: str | None = None) -> str:
        await self.deliveries.finish(delivery.id, status, now, error=error)
        self._decide(delivery, f"{status}" + (f": {error}" if error else ""))
        return status

    async def _retry(
        self,
        delivery: Delivery,
        now: datetime,
        error: str,
        retry_after: float | None = None,
        *,
        tried: Sequence[str] | None = None,
    ) -> str:
        attempts = delivery.attempts + 1
        if attempts >= self.settings.max_attempts:
            await self.deliveries.finish(
                delivery.id,
                Status.UNDELIVERABLE,
                now,
                error=f"gave up after {attempts} attempts: {error}",
                failed_attempt=True,
                tried=tried,
            )
            log.warning("reminder %s gave up after %d attempts: %s", delivery.id, attempts, error)
            return Status.UNDELIVERABLE
        delay = retry_after if retry_after is not None else self.backoff(attempts)
        until = now + timedelta(seconds=delay)
        await self.deliveries.postpone(
            delivery.id, Status.PLANNED, until, now, error=error, failed_attempt=True, tried=tried
        )
        return Status.PLANNED

    def backoff(self, attempts: int) -> float:
        base = self.settings.backoff_base_seconds * 2.0 ** max(0, attempts - 1)
        return min(self.settings.backoff_cap_seconds, base) * (0.8 + random.random() * 0.4)  # noqa: S311

    # ---- 3. sync ---------------------------------------------------------------------------

    async def sync_outbox(self, now: datetime) -> int:
        synced = 0
        for delivery, outbox_status, error in await self.deliveries.queued_outcomes():
            if outbox_status in ("sent", "passive"):
                channel = (delivery.channel_key or "").split(":", 1)[0] or None
                await self.deliveries.finish(
                    delivery.id,
                    Status.SENT,
                    now,
                    error=delivery.last_error,
                    channel=channel,
                    provider_message_id=f"outbox:{delivery.outbox_id}",
                )
                status = Status.SENT
            elif outbox_status == "held":
                # Staff took the chat over after it was queued: planned again for when the
                # bot has the chat back (or the next channel, if the takeover lasts).
                later = now + timedelta(minutes=self.settings.staff_defer_minutes)
                await self.deliveries.postpone(
                    delivery.id, Status.PLANNED, later, now, error="held by a staff takeover: planned again"
                )
                status = Status.PLANNED
            else:
                # Parked until the user writes, or refused: not sent. Planned again now, and
                # the next pass goes on with the next channel of the policy.
                word = (
                    "parked until the user writes" if outbox_status == "parked" else outcome_of_failure(error)
                )
                reason = f"chat: {word} ({error})" if error else f"chat: {word}"
                if delivery.last_error:
                    reason = f"{delivery.last_error}; {reason}"
                await self.deliveries.postpone(
                    delivery.id, Status.PLANNED, now, now, error=reason, tried=[*delivery.tried, "chat"]
                )
                status = Status.PLANNED
            self.metrics.incr(f"reminders_synced_{status}")
            synced += 1
        return synced
