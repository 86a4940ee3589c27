"""Which expiry reminder a seal is due at a given time: pure rules, no I/O.

A reminder cycle belongs to one ``valid_to``: renewing a seal gives it a new ``valid_to`` and so
a new cycle, and the reminders of the old one are never due again. Threshold ``t`` (days before
expiry) becomes due at ``valid_to - t days`` and stays due until the seal expires; the reminder
after expiry (``AFTER_EXPIRY``) is due from one day after ``valid_to`` for a grace period.

When several are due at once (the scheduler was down, or a seal was issued with little time
left) only the most urgent is sent: a user told "7 days left" needs no "30 days left" as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.settings import SchedulerSettings

# The threshold value of the reminder on the day after expiry (sorts as the most urgent).
AFTER_EXPIRY = -1
DAY = timedelta(days=1)


@dataclass(frozen=True)
class ReminderSchedule:
    thresholds_days: tuple[int, ...] = (60, 30, 7, 1)
    after_expiry: bool = True
    after_expiry_grace: timedelta = timedelta(days=3)

    @classmethod
    def from_settings(cls, settings: SchedulerSettings) -> ReminderSchedule:
        return cls(
            thresholds_days=tuple(settings.thresholds_days),
            after_expiry=settings.remind_after_expiry,
            after_expiry_grace=timedelta(days=settings.after_expiry_grace_days),
        )

    @property
    def thresholds(self) -> tuple[int, ...]:
        """Every threshold, least urgent first."""
        pre = tuple(sorted(self.thresholds_days, reverse=True))
        return (*pre, AFTER_EXPIRY) if self.after_expiry else pre

    @property
    def horizon(self) -> timedelta:
        """How far ahead of expiry the earliest reminder is due."""
        return max(self.thresholds_days) * DAY

    @property
    def lookback(self) -> timedelta:
        """How long after expiry a seal can still be due a reminder."""
        return DAY + self.after_expiry_grace if self.after_expiry else timedelta(0)

    def due_at(self, valid_to: datetime, threshold: int) -> datetime:
        if threshold == AFTER_EXPIRY:
            return valid_to + DAY
        return valid_to - threshold * DAY

    def expires_after(self, valid_to: datetime, threshold: int) -> datetime:
        """Until when a reminder of this threshold still makes sense."""
        if threshold == AFTER_EXPIRY:
            return valid_to + DAY + self.after_expiry_grace
        return valid_to

    def is_live(self, valid_to: datetime, threshold: int, now: datetime) -> bool:
        return self.due_at(valid_to, threshold) <= now < self.expires_after(valid_to, threshold)

    def most_urgent_due(self, valid_to: datetime, now: datetime) -> int | None:
        """The one reminder to send now for a seal valid until ``valid_to``, or None."""
        live = [t for t in self.thresholds if self.is_live(valid_to, t, now)]
        return min(live, key=_urgency) if live else None

    def upcoming(self, valid_to: datetime, start: datetime, end: datetime) -> list[tuple[int, datetime]]:
        """Reminders that become due in ``(start, end]``, in time order."""
        found = [(t, self.due_at(valid_to, t)) for t in self.thresholds]
        return sorted(((t, at) for t, at in found if start < at <= end), key=lambda pair: pair[1])

    def crossing_ranges(self, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
        """The ``valid_to`` ranges of seals for which some reminder became due in
        ``(since, until]``, merged: ``(lo, hi]`` each. Planning asks the platform only for these,
        so a pass reads the seals whose reminders just fell due, not every seal in the window."""
        ranges = []
        for threshold in self.thresholds:
            offset = DAY if threshold == AFTER_EXPIRY else -threshold * DAY
            # due_at = valid_to + offset, so due_at in (since, until] <=> valid_to in this range
            ranges.append((since - offset, until - offset))
        return merge_ranges(ranges)

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The ``valid_to`` range of every seal that may have a reminder due at ``now``."""
        return now - self.lookback, now + self.horizon


def _urgency(threshold: int) -> int:
    return threshold  # AFTER_EXPIRY (-1) is below every positive threshold: the most urgent


def merge_ranges(ranges: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(r for r in ranges if r[0] < r[1]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def threshold_label(threshold: int) -> str:
    return "after-expiry" if threshold == AFTER_EXPIRY else f"{threshold}d"


def supersedes(new: int, old: int) -> bool:
    """Whether a newly due reminder makes a pending older one pointless."""
    return _urgency(new) < _urgency(old)


def describe(thresholds: Sequence[int]) -> str:
    return ", ".join(threshold_label(t) for t in thresholds)
