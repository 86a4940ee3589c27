"""The expiry-reminder job: plan what fell due, send it once, record what became of it.

One pass (``run_once``) has three parts, each safe to run in several workers at once:

1. plan: ask the platform for the seals whose reminders fell due since the last pass (a full
   pass over the due window now and then, and on first start), and claim the most urgent due
   reminder of each (``DeliveryStore.claim``: a UNIQUE row, so once per seal, threshold and
   valid_to whatever the number of workers);
2. send: lease due rows and deliver each to the account's most recent chat identity, unless the
   seal was renewed or cancelled meanwhile, the user opted out, it is their quiet hours or staff
   own the conversation (both postpone). Chat messages go through ``Engine.push`` (the outbox;
   the dedupe id makes it one message even if a lease ran out mid-send); WeChat users outside
   the 48-hour window get a template / subscription notice through ``ProactiveDelivery``;
3. sync: copy the outbox's outcome of queued reminders back (sent, blocked, failed).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.engine.context import Ctx
from bot.engine.i18n import Translator
from bot.engine.messages import ConversationKey
from bot.engine.runtime import Engine
from bot.engine.state import Owner
from bot.engine.store import ConversationStore
from bot.errors import DeliveryFailed, SealbotError
from platform_client.errors import PlatformClientError
from platform_client.reminders import ExpiringSeal, RemindersAPI, SealState
from scheduler.deliveries import Claim, Delivery, DeliveryStore, Status
from scheduler.message import ReminderFacts, compose
from scheduler.metrics import MetricsRegistry
from scheduler.planner import ReminderSchedule
from scheduler.proactive import NoticeRefused, ProactiveDelivery, Reach
from scheduler.quiet_hours import SendWindow
from scheduler.settings import SchedulerSettings

log = logging.getLogger("sealbot.scheduler.reminders")

# Conversation memory written by the reminder settings flow (handlers/reminders.py); the same
# names are spelled there, since handlers do not import the scheduler.
OPT_OUT = "reminders_opt_out"
OPT_OUT_AT = "reminders_opt_out_at"
TIMEZONE = "timezone"

PLANNED_UNTIL = "scheduler.reminders.planned_until"
FULL_SWEEP_AT = "scheduler.reminders.full_sweep_at"
LIVE_SEAL_STATUSES = frozenset({"active", "locked", "expired"})


@dataclass
class PassReport:
    planned: int = 0
    full_sweep: bool = False
    outcomes: Counter[str] = field(default_factory=Counter)
    synced: int = 0

    @property
    def handled(self) -> int:
        return self.planned + sum(self.outcomes.values()) + self.synced


@dataclass(frozen=True)
class Preferences:
    opted_out: bool
    timezone: str | None
    locale: str


def outcome_of_failure(reason: str | None) -> str:
    """Map a channel's final refusal (the outbox keeps only its text) to a reminder status.

    Telegram's sender says ``telegram refused: Forbidden: bot was blocked by the user``; WeChat
    answers 43004 (not following) and 45015 (outside the window, when no template fallback).
    """
    text = (reason or "").lower()
    if any(word in text for word in ("blocked", "refused", "forbidden", "deactivated", "43004", "unfollow")):
        return Status.BLOCKED
    if any(word in text for word in ("consent", "subscri", "45015")):
        return Status.NO_CONSENT
    return Status.FAILED


async def read_preferences(store: ConversationStore, keys: Sequence[ConversationKey]) -> Preferences:
    """The account's choice across its identities (the most recent opt-out/opt-in wins), and
    the zone and language of the identity reminders go to (the first: the most recent)."""
    opted_out, decided_at = False, ""
    timezone: str | None = None
    locale = "zh-CN"
    for index, key in enumerate(keys):
        row = await store.get(key)
        if row is None:
            continue
        memory = row.state.get("memory") or {}
        at = str(memory.get(OPT_OUT_AT) or "")
        if OPT_OUT in memory and at >= decided_at:
            opted_out, decided_at = bool(memory[OPT_OUT]), at
        if index == 0:
            timezone = memory.get(TIMEZONE)
            locale = row.state.get("locale") or locale
    return Preferences(opted_out=opted_out, timezone=timezone, locale=locale)


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ReminderJob:
    def __init__(
        self,
        *,
        platform: RemindersAPI,
        engine: Engine,
        deliveries: DeliveryStore,
        settings: SchedulerSettings,
        clock: Any,
        proactive: Mapping[str, ProactiveDelivery] | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.platform = platform
        self.engine = engine
        self.store = engine.store
        self.deliveries = deliveries
        self.settings = settings
        self.clock = clock
        self.proactive = dict(proactive or {})
        self.metrics = metrics or MetricsRegistry()
        self.schedule = ReminderSchedule.from_settings(settings)
        self.window = SendWindow.from_settings(settings)

    async def run_once(self) -> PassReport:
        report = PassReport()
        now = self.clock.now()
        report.planned, report.full_sweep = await self.plan(now)
        while True:
            outcomes = await self.send_due(self.clock.now())
            report.outcomes.update(outcomes)
            if sum(outcomes.values()) < self.settings.batch:
                break
        report.synced = await self.sync_outbox(self.clock.now())
        for status, n in report.outcomes.items():
            self.metrics.incr(f"reminders_{status}", n)
        return report

    # ---- 1. plan ---------------------------------------------------------------------------

    async def plan(self, now: datetime) -> tuple[int, bool]:
        """Claim the reminders that fell due; returns (claims made, whether it was a full pass).

        The watermark moves only after a complete pass, so a pass that fails half way is
        simply repeated (claims are idempotent)."""
        last = await self.store.cursor(PLANNED_UNTIL)
        swept = await self.store.cursor(FULL_SWEEP_AT)
        full = last == 0 or now - _from_epoch(swept) >= timedelta(hours=self.settings.full_sweep_hours)
        if full:
            ranges = [self.schedule.window(now)]
        else:
            # Never look back further than the whole window: older crossings cannot be due.
            since = max(_from_epoch(last), now - self.schedule.horizon - self.schedule.lookback)
            ranges = self.schedule.crossing_ranges(since, now)
        claimed = 0
        batch: list[Claim] = []
        for lo, hi in ranges:
            async for seal in self.platform.iter_expiring_seals(
                until=hi, since=lo, page_size=self.settings.page_size
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
        if not keys:
            return await self._finish(delivery, Status.NO_CHAT, now, "no chat identity bound")
        preferences = await read_preferences(self.store, keys)
        if preferences.opted_out:
            return await self._finish(delivery, Status.OPTED_OUT, now)
        if not self.window.is_open(now, preferences.timezone):
            opens = self.window.next_open(now, preferences.timezone)
            await self.deliveries.postpone(delivery.id, Status.SKIPPED_QUIET, opens, now, error="quiet hours")
            return Status.SKIPPED_QUIET
        key = keys[0]  # the identity the user used last: one reminder, not one per identity
        if not Owner.is_bot(await self.store.owner_of(key)):
            later = now + timedelta(minutes=self.settings.staff_defer_minutes)
            await self.deliveries.postpone(
                delivery.id, Status.PLANNED, later, now, error="staff own the chat"
            )
            return Status.PLANNED
        channel = self.proactive.get(key.channel)
        reach = await channel.reach(key, now) if channel is not None else Reach.SESSION
        if reach is Reach.NONE:
            return await self._finish(delivery, Status.NO_CONSENT, now, channel_key=str(key))
        if reach is Reach.NOTICE and channel is not None:
            return await self._send_notice(delivery, channel, key, preferences, now)
        return await self._push(delivery, key, now)

    async def _push(self, delivery: Delivery, key: ConversationKey, now: datetime) -> str:
        opted_out = False

        async def say(ctx: Ctx) -> None:
            nonlocal opted_out
            # Read again under the conversation lock: the user may have just opted out.
            if ctx.memory.get(OPT_OUT):
                opted_out = True
                return
            zone = self.window.zone(ctx.memory.get(TIMEZONE))
            composed = compose(
                self._facts(delivery),
                ctx.t,
                now=ctx.now,
                zone=zone,
                renewal_window_days=self.settings.renewal_window_days,
            )
            ctx.say_text(composed.text, options=composed.options)

        messages = await self.engine.push(key, say, dedupe_id=delivery.dedupe_id)
        if opted_out:
            return await self._finish(delivery, Status.OPTED_OUT, now, channel_key=str(key))
        if not messages:
            return await self._finish(
                delivery, Status.FAILED, now, "nothing was queued", channel_key=str(key)
            )
        await self.deliveries.finish(
            delivery.id,
            Status.QUEUED,
            now,
            channel_key=str(key),
            route="outbox",
            outbox_id=messages[0].outbox_id,
        )
        return Status.QUEUED

    async def _send_notice(
        self,
        delivery: Delivery,
        channel: ProactiveDelivery,
        key: ConversationKey,
        preferences: Preferences,
        now: datetime,
    ) -> str:
        zone = self.window.zone(preferences.timezone)
        composed = compose(
            self._facts(delivery),
            Translator(self.engine.catalog, preferences.locale),
            now=now,
            zone=zone,
            renewal_window_days=self.settings.renewal_window_days,
        )
        try:
            await channel.send_notice(key, composed.notice)
        except NoticeRefused as exc:
            return await self._finish(
                delivery, exc.outcome, now, exc.reason, channel_key=str(key), route="notice"
            )
        except DeliveryFailed as exc:
            if not exc.retryable:
                status = outcome_of_failure(exc.reason)
                return await self._finish(
                    delivery, status, now, exc.reason, channel_key=str(key), route="notice"
                )
            return await self._retry(delivery, now, exc.reason, exc.retry_after)
        return await self._finish(delivery, Status.SENT, now, channel_key=str(key), route="notice")

    @staticmethod
    def _facts(delivery: Delivery) -> ReminderFacts:
        return ReminderFacts(
            seal_id=delivery.seal_id,
            seal_name=delivery.seal_name,
            seal_kind=delivery.seal_kind,
            threshold=delivery.threshold,
            valid_to=delivery.valid_to,
        )

    async def _finish(
        self,
        delivery: Delivery,
        status: str,
        now: datetime,
        error: str | None = None,
        *,
        channel_key: str | None = None,
        route: str | None = None,
    ) -> str:
        await self.deliveries.finish(
            delivery.id, status, now, error=error, channel_key=channel_key, route=route
        )
        log.info("reminder %s (seal %s, %s): %s", delivery.id, delivery.seal_id, delivery.threshold, status)
        return status

    async def _retry(
        self, delivery: Delivery, now: datetime, error: str, retry_after: float | None = None
    ) -> str:
        attempts = delivery.attempts + 1
        if attempts >= self.settings.max_attempts:
            await self.deliveries.finish(
                delivery.id, Status.FAILED, now, error=f"gave up: {error}", failed_attempt=True
            )
            log.warning("reminder %s gave up after %d attempts: %s", delivery.id, attempts, error)
            return Status.FAILED
        delay = retry_after if retry_after is not None else self.backoff(attempts)
        until = now + timedelta(seconds=delay)
        await self.deliveries.postpone(
            delivery.id, Status.PLANNED, until, now, error=error, failed_attempt=True
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
                status, reason = Status.SENT, None
            elif outbox_status == "held":
                status, reason = Status.FAILED, "held: staff took the conversation over"
            else:
                status, reason = outcome_of_failure(error), error
            await self.deliveries.finish(delivery.id, status, now, error=reason)
            self.metrics.incr(f"reminders_{status}")
            synced += 1
        return synced
