"""The cyclic garbage collector's setting for the service process.

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
