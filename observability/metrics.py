"""Prometheus metrics with ``prometheus_client``, in multiprocess mode under several workers.

Under one process the metrics live in this object's own registry. Under several workers (one
host, several ``sealbot serve`` processes) each process writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` and ``render()`` adds them up: prometheus_client reads that
variable when it is first imported, so the operator sets it in the environment of every worker
(the systemd unit and the compose file in deploy/ do), and the directory is emptied before the
workers start. Several hosts are scraped one by one, as Prometheus expects.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0)
_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """Every metric the service reports; one instance per process, built by the composition root."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        registry = CollectorRegistry(auto_describe=True)
        self._registry = registry
        self.messages_in = Counter(
            "sealbot_messages_in", "Messages received from users, by channel", ["channel"], registry=registry
        )
        self.messages_out = Counter(
            "sealbot_messages_out", "Replies delivered to users, by channel", ["channel"], registry=registry
        )
        self.deliveries_failed = Counter(
            "sealbot_deliveries_failed",
            "Replies a channel refused or could not take, by channel and whether it will be retried",
            ["channel", "retryable"],
            registry=registry,
        )
        self.outbox_lag = Histogram(
            "sealbot_outbox_lag_seconds",
            "Time from a reply's commit to its delivery",
            ["channel"],
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.lock_wait = Histogram(
            "sealbot_lock_wait_seconds",
            "Time a message waited for its conversation's lock",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.platform_call = Histogram(
            "sealbot_platform_call_seconds",
            "Latency of calls to the seal platform, by method, route and outcome",
            ["method", "route", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.reminders = Counter(
            "sealbot_reminders",
            "Expiry reminders by outcome (sent, deferred, undeliverable, opted_out) and channel",
            ["outcome", "channel"],
            registry=registry,
        )
        self.sms = Counter(
            "sealbot_sms",
            "SMS codes and notices by purpose and outcome (sent, refused_limit, refused_provider)",
            ["purpose", "outcome"],
            registry=registry,
        )
        self.payments = Counter(
            "sealbot_payments",
            "Payment events by provider and outcome (started, paid, refunded, rejected_notification)",
            ["provider", "outcome"],
            registry=registry,
        )
        self.retention_deleted = Counter(
            "sealbot_retention_deleted",
            "Personal data removed by the retention job, by category",
            ["category"],
            registry=registry,
        )
        self.bus_connected = Gauge(
            "sealbot_event_bus_connected",
            "1 while this worker's event bus listener is connected",
            registry=registry,
            multiprocess_mode="livemax",
        )

        # Kept from the first /metrics (dashboards and bench.wechat read them).
        self.outbox_sent = Counter(
            "sealbot_outbox_sent", "Replies the outbox delivered (every channel)", registry=registry
        )
        self.outbox_failed = Counter(
            "sealbot_outbox_failed", "Replies the outbox gave up on (every channel)", registry=registry
        )
        self.store_write_transactions = Counter(
            "sealbot_store_write_transactions",
            "Write transactions of the conversation store",
            registry=registry,
        )
        # Where the embedded store's SQLite work ran: on the event loop's thread (its fast path),
        # or in its writer thread (batches another connection's lock kept off the loop, and the
        # checkpoints): busy close to the wall clock is a saturated writer, busy far above CPU
        # is the writer waiting for the GIL (bench/README.md, store_cost).
        self.store_loop_seconds = Counter(
            "sealbot_store_loop_seconds",
            "Seconds the embedded store's batches ran on the event loop's thread",
            registry=registry,
        )
        self.store_writer_busy = Counter(
            "sealbot_store_writer_busy_seconds",
            "Seconds the embedded store's writer thread spent running batches",
            registry=registry,
        )
        self.store_writer_cpu = Counter(
            "sealbot_store_writer_cpu_seconds",
            "CPU seconds of the embedded store's writer thread",
            registry=registry,
        )
        # The cyclic garbage collector's pauses (``bot.gc_settings.CollectorPauses``): each
        # one holds the event loop, so a long full collection is latency every request feels.
        self.gc_pause = Histogram(
            "sealbot_gc_pause_seconds",
            "Pauses of the cyclic garbage collector, by generation",
            ["generation"],
            buckets=_PAUSE_BUCKETS,
            registry=registry,
        )
        self.gc_longest_pause = Gauge(
            "sealbot_gc_longest_pause_seconds",
            "The longest pause of the cyclic garbage collector since start, by generation",
            ["generation"],
            registry=registry,
            multiprocess_mode="max",
        )
        # The timed duties (reminders, timeouts, retention); each worker runs its own, so the
        # gauges keep one value per process under multiprocess mode.
        self.job_runs = Counter(
            "sealbot_scheduler_job_runs", "Runs of a timed duty", ["job"], registry=registry
        )
        self.job_failures = Counter(
            "sealbot_scheduler_job_failures", "Failed runs of a timed duty", ["job"], registry=registry
        )
        self.job_last_duration = Gauge(
            "sealbot_scheduler_job_last_duration_seconds",
            "How long the last run of a timed duty took",
            ["job"],
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.job_last_success = Gauge(
            "sealbot_scheduler_job_last_success_timestamp",
            "When a timed duty last succeeded (epoch seconds)",
            ["job"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.job_last_result = Gauge(
            "sealbot_scheduler_job_last_result",
            "What the last run of a timed duty handled (items)",
            ["job"],
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.scheduler_events = Counter(
            "sealbot_scheduler_events",
            "What the timed duties counted (reminders sent, deferred, ...), by name",
            ["event"],
            registry=registry,
        )

    def render(self) -> bytes:
        """The exposition text: this process's registry, or every worker's under multiprocess."""
        if multiprocess_mode():
            combined = CollectorRegistry()
            MultiProcessCollector(combined)  # type: ignore[no-untyped-call]  # unannotated upstream
            return generate_latest(combined)
        return generate_latest(self._registry)
