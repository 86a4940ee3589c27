"""A small sliding-window limiter for the password page (per client address and per link).

It is per process: with several workers each keeps its own window, which still bounds a
guesser; the account's lock-out on the platform (five wrong passwords) is the shared limit.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta


class SlidingWindow:
    def __init__(self, limit: int, window: timedelta, *, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[datetime]] = {}

    def allow(self, key: str, now: datetime) -> bool:
        """Count one attempt for ``key``; False when the window is full (not counted)."""
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._forget_idle(now)
            hits = self._hits[key] = deque()
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    def _forget_idle(self, now: datetime) -> None:
        for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window]:
            del self._hits[key]
        while len(self._hits) >= self.max_keys:  # still full of live keys: drop the oldest
            del self._hits[next(iter(self._hits))]
