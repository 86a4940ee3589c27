"""The cyclic garbage collector's setting for the service process, and its pauses measured.

CPython (3.11) runs a young-generation collection every 700 net allocations of container
objects, and every tenth of those an older one; a full collection, from time to time, walks
every object alive, the imported modules' included. Every count that passes 700 is objects
that outlived the last collection; a message's objects stay alive across the awaits of its
durable commit, and with 64 conversations in flight the engine keeps passing it: about 60
young collections per thousand messages and, every few seconds, a full one that held the
event loop for 0.07-0.2 s. Timed with ``gc.callbacks`` over ``bench.forms``' timed section,
2,000 users: 64-75 us of a message's 237-287 us of event loop CPU. (python-telegram-bot, whose
in-memory handler finishes a message without awaiting anything, 0.1 us.) At 7,000 the
collector runs about twenty times in the same 20,000 messages: 1.4-1.7 us a message. (CPython
3.13 raised the default to 2,000 for the same reason; at 2,000 this workload still spent a
large share, see ``bench/README.md``.)

What it costs: a reference cycle is freed after up to 7,000 net allocations instead of 700,
a few hundred kilobytes at most. ``bench/README.md`` has the measurements.

A full collection still walks everything alive, and most of that is what start-up made
(modules, classes, the container), which lives as long as the process: ``freeze_start_up``
moves it out of the collector's sight once the service has started, so that a full collection
walks only what came after. ``CollectorPauses`` times every collection for ``/metrics``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from typing import Any

log = logging.getLogger("sealbot.gc")

YOUNG_THRESHOLD = 7000
GENERATIONS = len(gc.get_threshold())


class CollectorPauses:
    """Every collection's pause, by generation, from ``gc.callbacks``.

    The callback runs inside the collector, on whichever thread triggered it, so it only does
    arithmetic and appends to a bounded deque: taking a lock there (a Prometheus metric's) could
    deadlock with the thread the collection interrupted. ``drain`` hands the pauses over."""

    def __init__(self, keep: int = 4096) -> None:
        self.count = [0] * GENERATIONS
        self.longest = [0.0] * GENERATIONS
        self.total_seconds = 0.0  # every generation's pauses, added up
        self._recent: deque[tuple[int, float]] = deque(maxlen=keep)
        self._began = 0.0
        self._started = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        pause = time.perf_counter() - self._began
        generation = int(info["generation"])
        self.count[generation] += 1
        self.total_seconds += pause
        self.longest[generation] = max(self.longest[generation], pause)
        self._recent.append((generation, pause))

    def start(self) -> None:
        if not self._started:
            gc.callbacks.append(self._callback)
            self._started = True

    def stop(self) -> float:
        """Stop timing; returns the seconds timed in all."""
        if self._started:
            gc.callbacks.remove(self._callback)
            self._started = False
        return self.total_seconds

    def drain(self) -> list[tuple[int, float]]:
        """The (generation, seconds) of each pause since the last drain (the most recent
        ``keep`` of them, should more have happened)."""
        taken = []
        while self._recent:
            taken.append(self._recent.popleft())
        return taken


# The service process's own (the collector is one per process, and so are its callbacks).
SERVICE_PAUSES = CollectorPauses()


def configure_for_service() -> tuple[int, int, int]:
    """Raise the young generation's threshold (the older ones' stay); returns the thresholds
    before, for a caller (a benchmark) that restores them."""
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, before[1], before[2])
    return before


def freeze_start_up() -> int:
    """Once the service has started: free start-up's garbage, then keep every object alive now
    out of later collections (``gc.freeze``); returns how many objects that was. They are
    never collected afterwards, so this is for objects that live as long as the process."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def serving() -> None:
    """What ``sealbot serve`` does once it has started: freeze what start-up made, then time
    every pause from here on (``/metrics``: what serving costs, not what starting did)."""
    frozen = freeze_start_up()
    log.info("%d objects of start-up kept out of the garbage collector's later collections", frozen)
    SERVICE_PAUSES.start()
