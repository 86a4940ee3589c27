"""When a reminder may reach a user: a daily send window in the user's own time zone.

Outside the window (by default 20:00-09:00 Asia/Shanghai) reminders wait for the next opening;
a window may also run across midnight (start later than end).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.settings import SchedulerSettings


@dataclass(frozen=True)
class SendWindow:
    start: time = time(9, 0)
    end: time = time(20, 0)
    default_zone: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, settings: SchedulerSettings) -> SendWindow:
        return cls(settings.send_window_start, settings.send_window_end, settings.default_timezone)

    def zone(self, name: str | None) -> ZoneInfo:
        """The user's zone; an unknown or missing name falls back to the default."""
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return ZoneInfo(self.default_zone)

    def _open_at(self, clock: time) -> bool:
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def is_open(self, now: datetime, zone_name: str | None = None) -> bool:
        return self._open_at(now.astimezone(self.zone(zone_name)).time())

    def next_open(self, now: datetime, zone_name: str | None = None) -> datetime:
        """``now`` when the window is open, else the next time it opens (UTC)."""
        zone = self.zone(zone_name)
        local = now.astimezone(zone)
        if self._open_at(local.time()):
            return now
        day = local.date()
        for offset in (0, 1):
            # Built from the wall-clock date so that a DST change lands on the local opening time.
            opening = datetime.combine(day + timedelta(days=offset), self.start, tzinfo=zone)
            if opening > local:
                return opening.astimezone(UTC)
        raise AssertionError("a daily window opens within a day")
