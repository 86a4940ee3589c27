"""Every timed duty of the service, on an APScheduler ``AsyncIOScheduler``.

APScheduler only says *when* each duty runs in this process; what a duty does is safe with
several workers running it at once (claims and conditional updates in the database decide).
Each run is logged and counted in ``MetricsRegistry`` (runs, failures, duration, result); a
failing run is logged and the next one runs on time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.engine.outbox import OutboxDispatcher
from bot.engine.runtime import Engine
from platform_client.reminders import RemindersAPI
from scheduler.housekeeping import pause_stale_conversations, prune_conversations, purge_dedupe_records
from scheduler.metrics import MetricsRegistry
from scheduler.reminders import ReminderJob
from scheduler.settings import SchedulerSettings

log = logging.getLogger("sealbot.scheduler")

Duty = Callable[[], Awaitable[float]]


@dataclass(frozen=True)
class TimedDuty:
    name: str
    every_seconds: float
    run: Duty


class DutyRunner:
    """Runs one duty with logging and metrics; what the scheduler (and tests, and the CLI)
    call, so a duty behaves the same however it is triggered."""

    def __init__(self, metrics: MetricsRegistry) -> None:
        self.metrics = metrics

    async def run(self, name: str, duty: Duty) -> float | None:
        stats = self.metrics.job(name)
        started = time.perf_counter()
        try:
            result = await duty()
        except Exception:
            stats.failures += 1
            log.exception("duty %s failed", name)
            return None
        finally:
            stats.runs += 1
            stats.last_duration_seconds = time.perf_counter() - started
        stats.last_success_at = time.time()
        stats.last_result = float(result)
        if result:
            log.info("duty %s handled %s in %.3fs", name, result, stats.last_duration_seconds)
        return result


def service_duties(
    *,
    settings: SchedulerSettings,
    engine: Engine,
    db: AsyncEngine,
    dispatcher: OutboxDispatcher,
    platform: RemindersAPI,
    reminders: ReminderJob,
) -> list[TimedDuty]:
    """The duties of a bot worker, each a coroutine returning how much it handled."""
    clock = engine.clock

    async def send_reminders() -> float:
        return float((await reminders.run_once()).handled)

    async def fire_timeouts() -> float:
        return float(await engine.fire_due_timeouts())

    async def retry_outbox() -> float:
        return float(await dispatcher.run_once())

    async def reconcile_payments() -> float:
        # Expired orders publish ``order.expired``; the event feed tells each applicant.
        report = await platform.reconcile_payments()
        return float(len(report.paid) + len(report.expired))

    async def purge_dedupe() -> float:
        retention = timedelta(days=settings.dedupe_retention_days)
        return float(await purge_dedupe_records(db, clock.now(), older_than=retention))

    async def pause_stale() -> float:
        idle = timedelta(hours=settings.stale_after_hours)
        return float(await pause_stale_conversations(engine, db, clock.now(), idle=idle))

    async def retention() -> float:
        retention = timedelta(days=settings.conversation_retention_days)
        pruned = await prune_conversations(db, clock.now(), older_than=retention)
        return float(pruned + (await platform.apply_retention()).total)

    return [
        TimedDuty("reminders", settings.reminders_every_seconds, send_reminders),
        TimedDuty("engine_timeouts", settings.timeouts_every_seconds, fire_timeouts),
        TimedDuty("outbox_retry", settings.outbox_every_seconds, retry_outbox),
        TimedDuty("payment_reconcile", settings.reconcile_every_seconds, reconcile_payments),
        TimedDuty("dedupe_purge", settings.purge_every_seconds, purge_dedupe),
        TimedDuty("stale_conversations", settings.stale_every_seconds, pause_stale),
        TimedDuty("retention", settings.retention_every_seconds, retention),
    ]


def build_scheduler(
    duties: list[TimedDuty], metrics: MetricsRegistry, **scheduler_options: Any
) -> AsyncIOScheduler:
    """An (unstarted) scheduler with one interval job per duty. ``start()`` it inside the
    running event loop; ``shutdown(wait=False)`` on stop."""
    runner = DutyRunner(metrics)
    scheduler = AsyncIOScheduler(**scheduler_options)
    for duty in duties:
        scheduler.add_job(
            runner.run,  # a coroutine function, so APScheduler awaits it on the event loop
            "interval",
            args=(duty.name, duty.run),
            seconds=duty.every_seconds,
            id=duty.name,
            name=duty.name,
            # A slow run is not stacked with the next one, and missed runs collapse into one.
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(duty.every_seconds)),
        )
    return scheduler
