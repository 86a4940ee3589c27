"""Exponential backoff with full jitter, so many bridges do not reconnect in step."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    random_fraction: Callable[[], float] = field(default=random.random)
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        # never below half the ceiling: a flapping server still gets some breathing room
        return ceiling / 2 + self.random_fraction() * ceiling / 2

    def reset(self) -> None:
        self.attempt = 0
