"""Office hours: whether staff are in now, and when they are back."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


class OfficeHours:
    def __init__(self, *, zone: ZoneInfo, opens: time, closes: time, days: frozenset[int]) -> None:
        self.zone = zone
        self.opens = opens
        self.closes = closes
        self.days = days

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        return local.isoweekday() in self.days and self.opens <= local.time() < self.closes

    def next_opening(self, now: datetime) -> datetime:
        """The next moment staff are in (``now`` itself when they are), in the office zone."""
        local = now.astimezone(self.zone)
        if self.is_open(now):
            return local
        day = local.date()
        # Today's opening if it is still ahead, else the first office day after today.
        for offset in range(8):
            candidate_day = day + timedelta(days=offset)
            if candidate_day.isoweekday() not in self.days:
                continue
            opening = datetime.combine(candidate_day, self.opens, tzinfo=self.zone)
            if opening > local:
                return opening
        raise AssertionError("office_days is never empty")  # settings validate it
