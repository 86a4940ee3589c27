"""Counters and timings of the timed duties, read as a flat dict (the lead serves it on /metrics).

In-process only: each worker counts its own runs, which is what an operator compares across
workers (one stuck worker shows as a flat ``runs`` line).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class JobStats:
    runs: int = 0
    failures: int = 0
    last_duration_seconds: float = 0.0
    last_success_at: float = 0.0  # epoch seconds; 0 until the first success
    last_result: float = 0.0  # what the run reported (items handled)


@dataclass
class MetricsRegistry:
    jobs: dict[str, JobStats] = field(default_factory=lambda: defaultdict(JobStats))
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def job(self, name: str) -> JobStats:
        return self.jobs[name]

    def incr(self, name: str, by: int = 1) -> None:
        self.counters[name] += by

    def snapshot(self) -> dict[str, float]:
        """``scheduler_job_runs_total{job="reminders"}``-style names mapped to values."""
        out: dict[str, float] = {}
        for name, stats in sorted(self.jobs.items()):
            label = f'{{job="{name}"}}'
            out[f"scheduler_job_runs_total{label}"] = stats.runs
            out[f"scheduler_job_failures_total{label}"] = stats.failures
            out[f"scheduler_job_last_duration_seconds{label}"] = stats.last_duration_seconds
            out[f"scheduler_job_last_success_timestamp{label}"] = stats.last_success_at
            out[f"scheduler_job_last_result{label}"] = stats.last_result
        for name, value in sorted(self.counters.items()):
            out[f"scheduler_{name}_total"] = value
        return out
