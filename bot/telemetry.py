"""The service's Prometheus metrics, fed from the seams where things happen.

``ServiceTelemetry`` owns one ``observability.metrics.Metrics`` per service and is what the
composition root plugs in: the engine's ``on_inbound`` hook (messages in), the outbox's
``DeliveryObserver`` (messages out, outbox lag, failures by channel), the conversation locks'
wait observer, and a transport around the platform client (call latency by route). Counters
kept elsewhere as plain numbers (the store's write transactions, the timed duties' stats, the
garbage collector's pauses) are copied in by ``sync`` before each scrape and every few
seconds, so under several workers (multiprocess mode) every worker's share is in the files
when any worker is scraped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bot.engine.messages import Inbound, InboundKind, OutboundMessage
from bot.engine.store import WriterUsage
from bot.gc_settings import SERVICE_PAUSES, CollectorPauses
from observability.metrics import Metrics
from scheduler.metrics import MetricsRegistry

# Path segments that are identifiers (ids, codes, tokens) become "{id}": routes, not values,
# label the latency histogram, so its size stays bounded.
_VERSION = re.compile(r"^v\d+$")
_IDENTIFIER = re.compile(r"\d|^[A-Za-z0-9_-]{20,}$")


def route_of(path: str) -> str:
    segments = path.split("?", 1)[0].split("/")
    return "/".join(
        segment if not segment or _VERSION.match(segment) or not _IDENTIFIER.search(segment) else "{id}"
        for segment in segments
    )


class TimedTransport(httpx.AsyncBaseTransport):
    """Times each request of the wrapped transport (until the answer's headers) and reports
    method, route and outcome (``2xx``..``5xx``, or ``unreachable``)."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, observe: Callable[[str, str, str, float], None]
    ) -> None:
        self._inner = inner
        self._observe = observe

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        route = route_of(request.url.path)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError:
            self._observe(request.method, route, "unreachable", time.perf_counter() - started)
            raise
        self._observe(
            request.method, route, f"{response.status_code // 100}xx", time.perf_counter() - started
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class _Seen:
    """What ``sync`` copied last time, so counters move by the difference."""

    store_writes: int = 0
    store_writer: WriterUsage = field(default_factory=lambda: WriterUsage(0.0, 0.0))
    job_runs: dict[str, int] = field(default_factory=dict)
    job_failures: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)


class ServiceTelemetry:
    def __init__(self, metrics: Metrics | None = None, collector: CollectorPauses | None = None) -> None:
        """``collector``: the garbage collector's pauses to report (by default the service
        process's own, timed once ``sealbot serve`` starts)."""
        self.metrics = metrics or Metrics()
        self.collector = collector if collector is not None else SERVICE_PAUSES
        self._seen = _Seen()

    # ---- the seams ---------------------------------------------------------------------------

    def inbound(self, inbound: Inbound) -> None:
        # What users send; outside events (payments, jobs, timeouts) are not messages in.
        if inbound.kind is not InboundKind.EVENT:
            self.metrics.messages_in.labels(channel=inbound.key.channel).inc()

    def delivered(self, message: OutboundMessage, lag: float) -> None:
        channel = message.key.channel
        self.metrics.messages_out.labels(channel=channel).inc()
        self.metrics.outbox_lag.labels(channel=channel).observe(lag)
        self.metrics.outbox_sent.inc()

    def failed(self, message: OutboundMessage, *, retryable: bool) -> None:
        self.metrics.deliveries_failed.labels(
            channel=message.key.channel, retryable="true" if retryable else "false"
        ).inc()
        if not retryable:
            self.metrics.outbox_failed.inc()

    def lock_waited(self, seconds: float) -> None:
        self.metrics.lock_wait.observe(seconds)

    def platform_call(self, method: str, route: str, outcome: str, seconds: float) -> None:
        self.metrics.platform_call.labels(method=method, route=route, outcome=outcome).observe(seconds)

    def transport(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return TimedTransport(inner, self.platform_call)

    # ---- numbers kept elsewhere ----------------------------------------------------------------

    def sync(
        self, *, registry: MetricsRegistry, store_writes: int, store_writer: WriterUsage, bus_healthy: bool
    ) -> None:
        seen, metrics = self._seen, self.metrics
        if store_writes > seen.store_writes:
            metrics.store_write_transactions.inc(store_writes - seen.store_writes)
            seen.store_writes = store_writes
        moved = store_writer - seen.store_writer
        if moved.busy_seconds > 0:
            metrics.store_writer_busy.inc(moved.busy_seconds)
        if moved.cpu_seconds > 0:
            metrics.store_writer_cpu.inc(moved.cpu_seconds)
        if moved.loop_seconds > 0:
            metrics.store_loop_seconds.inc(moved.loop_seconds)
        seen.store_writer = store_writer
        for name, stats in list(registry.jobs.items()):
            runs_before = seen.job_runs.get(name, 0)
            if stats.runs > runs_before:
                metrics.job_runs.labels(job=name).inc(stats.runs - runs_before)
            seen.job_runs[name] = stats.runs
            failures_before = seen.job_failures.get(name, 0)
            if stats.failures > failures_before:
                metrics.job_failures.labels(job=name).inc(stats.failures - failures_before)
            seen.job_failures[name] = stats.failures
            metrics.job_last_duration.labels(job=name).set(stats.last_duration_seconds)
            metrics.job_last_success.labels(job=name).set(stats.last_success_at)
            metrics.job_last_result.labels(job=name).set(stats.last_result)
        for name, value in list(registry.counters.items()):
            before = seen.events.get(name, 0)
            if value > before:
                metrics.scheduler_events.labels(event=name).inc(value - before)
            seen.events[name] = value
        metrics.bus_connected.set(1 if bus_healthy else 0)
        self._sync_collector()

    def _sync_collector(self) -> None:
        collector, metrics = self.collector, self.metrics
        for generation, seconds in collector.drain():
            metrics.gc_pause.labels(generation=str(generation)).observe(seconds)
        for generation, longest in enumerate(collector.longest):
            if collector.count[generation]:
                metrics.gc_longest_pause.labels(generation=str(generation)).set(longest)

    def render(self) -> bytes:
        return self.metrics.render()
