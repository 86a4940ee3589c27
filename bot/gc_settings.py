"""The cyclic garbage collector's setting for the service process.

CPython (3.11) runs a young-generation collection every 700 net allocations of container
objects, and every tenth of those an older one; a full collection, from time to time, walks
every object alive, the imported modules' included. The engine makes and drops many small
dicts and dataclasses a message, and with 64 conversations in flight a few thousand of them
are alive at any moment, so under load the collector ran about 60 young collections per
thousand messages and, every few seconds, a full one that held the event loop for about 0.2 s:
78-93 us of a message's 200-250 us of event loop CPU (``bench.forms``' engine, 2,000 users,
timed with ``gc.callbacks``). With the young threshold at 7,000 the collector runs about
twenty times in the same 20,000 messages and costs 2-3 us a message. (CPython 3.13 raised
the default to 2,000 for the same reason; at 2,000 this workload still spends 42-49 us.)

What it costs: a reference cycle is freed after up to 7,000 net allocations instead of 700,
a few hundred kilobytes at most. ``bench/README.md`` has the measurements.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 7000


def configure_for_service() -> tuple[int, int, int]:
    """Raise the young generation's threshold (the older ones' stay); returns the thresholds
    before, for a caller (a benchmark) that restores them."""
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, before[1], before[2])
    return before
