"""What a production run is doing now, for the console's live view.

A station reports each step it starts (the bridge's ``produce`` job sends them as progress
frames; a station in this process reports them directly): initialising the blank token,
generating the key pair on it, certifying, writing the certificate and the SESeal, reading
both back. The board keeps the latest run of each order in this process's memory, which is
where the run happens (the console's request waits for it); the production page polls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from seal_platform.clock import Clock
from seal_platform.services import PlatformServices

# In the order a station goes through them.
STEPS = ("init_token", "generate_key", "certify", "write", "verify")
StepSink = Callable[[str], None]


def no_progress(_step: str) -> None:
    return None


@dataclass
class _Run:
    staff: str
    started_at: datetime
    steps: list[str] = field(default_factory=list)
    finished_at: datetime | None = None
    error: str | None = None


class ProductionProgress:
    """The latest production run of each order (bounded: old finished runs are dropped)."""

    KEPT = 200

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._runs: dict[str, _Run] = {}

    def begin(self, order_id: str, staff: str) -> StepSink:
        """A new run of ``order_id``; the sink records the steps the station reports."""
        self._runs.pop(order_id, None)
        self._runs[order_id] = _Run(staff, self._clock.now())
        while len(self._runs) > self.KEPT:
            del self._runs[next(iter(self._runs))]

        def step(name: str) -> None:
            run = self._runs.get(order_id)
            if run is not None and run.finished_at is None and name in STEPS and name not in run.steps:
                run.steps.append(name)

        return step

    def end(self, order_id: str, error: str | None = None) -> None:
        run = self._runs.get(order_id)
        if run is not None:
            run.finished_at, run.error = self._clock.now(), error

    def view(self, order_id: str) -> dict[str, Any]:
        run = self._runs.get(order_id)
        if run is None:
            return {"order_id": order_id, "running": False, "steps": [], "error": None}
        return {
            "order_id": order_id,
            "running": run.finished_at is None,
            "staff": run.staff,
            "steps": list(run.steps),
            "error": run.error,
        }


def production_progress(services: PlatformServices) -> ProductionProgress:
    """The board of ``services``, made on first use."""
    board = services.production_progress
    if board is None:
        board = services.production_progress = ProductionProgress(services.clock)
    return board
