"""How long a seal's certificate runs after each process (the one place this is decided).

- Renewal sells whole years added to the later of the current end date and today: renewing
  early loses no day, renewing after expiry does not pay for the lapsed time.
- Change and reissue put a new certificate (and for reissue a new key) on the seal for the
  term already paid for: the end date stays exactly as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime

from seal_platform.errors import RuleViolation
from seal_platform.production.ca import add_years


def _utc(moment: datetime) -> datetime:
    # SQLite hands datetimes back naive; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def renewed_valid_to(valid_to: datetime | None, now: datetime, years: int) -> datetime:
    """The end date after renewing for ``years``: counted from max(current end, now)."""
    start = max(_utc(valid_to), now) if valid_to is not None else now
    return add_years(start, years)


def kept_valid_to(valid_to: datetime | None, now: datetime) -> datetime:
    """The end date a change or reissue keeps; an ended term has nothing left to keep."""
    if valid_to is None or _utc(valid_to) <= now:
        raise RuleViolation(
            "the seal's term has ended: renew it instead",
            code="seal_term_ended",
            valid_to=_utc(valid_to).isoformat() if valid_to is not None else None,
        )
    return _utc(valid_to)
