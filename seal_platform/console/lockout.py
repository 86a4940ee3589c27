"""Staff sign-in throttling, shared by every door (console, support inbox, staff API).

Two counters per attempt. The username's: after 5 failed passwords that username is locked for
15 minutes, from everywhere. The client IP's: across usernames, after 10 failures each further
attempt from that address waits a growing delay (1, 2, 4 ... 60 seconds) but is never locked, so
that wrong passwords for other names (or for no real name) cannot lock out ``admin``.

An attempt is counted *before* its password is checked (a conditional UPDATE that only passes
while fewer than the allowed attempts are counted), in a transaction of its own, so that many
guesses sent at once cannot all slip in before the first failure is recorded. A success gives
the reservation back: the username's count is cleared, the IP's count loses the one attempt (an
attacker with one valid account must not be able to clear the IP's record). Failures older than
the window are forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.errors import RateLimited
from seal_platform.services import PlatformServices

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
IP_FREE_FAILURES = 10
IP_MAX_DELAY = timedelta(seconds=60)


def _ip_delay(failures: int) -> timedelta:
    """The wait before the next attempt from an address with this many counted failures."""
    over = failures - IP_FREE_FAILURES
    if over <= 0:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(over - 1, 10)), IP_MAX_DELAY)


class ConsoleLoginThrottle(Base):
    """Counted password attempts per key: ``user:<username>`` or ``ip:<address>``."""

    __tablename__ = "console_login_throttles"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class LoginLocked(RateLimited):
    code = "console_login_locked"


@dataclass(frozen=True)
class ThrottleKeys:
    username: str
    ip: str

    @property
    def all(self) -> tuple[str, str]:
        return (self.user_key, self.ip_key)

    @property
    def user_key(self) -> str:
        return "user:" + self.username.strip().lower()[:100]

    @property
    def ip_key(self) -> str:
        return "ip:" + self.ip[:100]


async def reserve_attempt(services: PlatformServices, keys: ThrottleKeys) -> None:
    """Count one attempt for the username and the IP, or raise ``LoginLocked``."""
    reserved: list[str] = []
    for key in keys.all:
        retry_after = await (_reserve(services, key) if key == keys.user_key else _reserve_ip(services, key))
        if retry_after is not None:
            # The attempt will not happen: give back what was already counted for it.
            await _release(services, reserved, clear=False)
            if key == keys.user_key:
                minutes = max(1, (retry_after + 59) // 60)
                raise LoginLocked(
                    f"登录失败次数过多，该账号已被暂时锁定，请{minutes}分钟后再试", retry_after=retry_after
                )
            raise LoginLocked(f"登录尝试过于频繁，请{retry_after}秒后再试", retry_after=retry_after)
        reserved.append(key)


async def record_failure(services: PlatformServices, keys: ThrottleKeys) -> None:
    """The counted attempt failed: lock each key that has used up its attempts."""
    now = services.clock.now()
    async with services.db.session() as counter:
        await counter.execute(
            update(ConsoleLoginThrottle)
            .where(
                ConsoleLoginThrottle.key == keys.user_key,
                ConsoleLoginThrottle.failures >= MAX_FAILURES,
                ConsoleLoginThrottle.locked_until.is_(None),
            )
            .values(locked_until=now + LOCKOUT)
        )


async def record_success(services: PlatformServices, keys: ThrottleKeys) -> None:
    await _release(services, [keys.user_key], clear=True)
    # The address gives back this attempt's count and the wait it set; its earlier failures stay
    # counted, so the next failure from it waits as long as before.
    async with services.db.session() as counter:
        await counter.execute(
            update(ConsoleLoginThrottle)
            .where(ConsoleLoginThrottle.key == keys.ip_key, ConsoleLoginThrottle.failures > 0)
            .values(failures=ConsoleLoginThrottle.failures - 1, locked_until=None)
        )


async def _reserve(services: PlatformServices, key: str) -> int | None:
    """``None`` when the attempt was counted, else the seconds until the key unlocks."""
    now = services.clock.now()
    async with services.db.session() as counter:
        await _ensure_row(counter, key)
        # A lock that ran out, or failures older than the window, start a new count.
        await counter.execute(
            update(ConsoleLoginThrottle)
            .where(
                ConsoleLoginThrottle.key == key,
                or_(
                    ConsoleLoginThrottle.locked_until <= now,
                    and_(
                        ConsoleLoginThrottle.locked_until.is_(None),
                        ConsoleLoginThrottle.last_attempt_at <= now - LOCKOUT,
                    ),
                ),
            )
            .values(failures=0, locked_until=None)
        )
        counted = await counter.execute(
            update(ConsoleLoginThrottle)
            .where(
                ConsoleLoginThrottle.key == key,
                ConsoleLoginThrottle.locked_until.is_(None),
                ConsoleLoginThrottle.failures < MAX_FAILURES,
            )
            .values(failures=ConsoleLoginThrottle.failures + 1, last_attempt_at=now)
            .returning(ConsoleLoginThrottle.failures)
        )
        if counted.scalar_one_or_none() is not None:
            return None
        locked_until = await counter.scalar(
            select(ConsoleLoginThrottle.locked_until).where(ConsoleLoginThrottle.key == key)
        )
        if locked_until is None:
            # The remaining attempts are in flight right now; lock as if they all failed.
            locked_until = now + LOCKOUT
            await counter.execute(
                update(ConsoleLoginThrottle)
                .where(ConsoleLoginThrottle.key == key)
                .values(locked_until=locked_until)
            )
        return max(1, int((locked_until - now).total_seconds() + 0.999))


async def _reserve_ip(services: PlatformServices, key: str) -> int | None:
    """Like ``_reserve`` for an address: its count only grows the wait, it never locks.

    The wait for the next attempt is set when this one is counted, so that guesses sent at once
    cannot all pass before the first failure is recorded.
    """
    now = services.clock.now()
    async with services.db.session() as counter:
        await _ensure_row(counter, key)
        await counter.execute(
            update(ConsoleLoginThrottle)
            .where(ConsoleLoginThrottle.key == key, ConsoleLoginThrottle.last_attempt_at <= now - LOCKOUT)
            .values(failures=0, locked_until=None)
        )
        counted = await counter.execute(
            update(ConsoleLoginThrottle)
            .where(
                ConsoleLoginThrottle.key == key,
                or_(ConsoleLoginThrottle.locked_until.is_(None), ConsoleLoginThrottle.locked_until <= now),
            )
            .values(failures=ConsoleLoginThrottle.failures + 1, last_attempt_at=now)
            .returning(ConsoleLoginThrottle.failures)
        )
        failures = counted.scalar_one_or_none()
        if failures is not None:
            delay = _ip_delay(failures)
            await counter.execute(
                update(ConsoleLoginThrottle)
                .where(ConsoleLoginThrottle.key == key)
                .values(locked_until=now + delay if delay else None)
            )
            return None
        waiting_until = await counter.scalar(
            select(ConsoleLoginThrottle.locked_until).where(ConsoleLoginThrottle.key == key)
        )
        remaining = (waiting_until - now).total_seconds() if waiting_until is not None else 1
        return max(1, int(remaining + 0.999))


async def _ensure_row(counter: AsyncSession, key: str) -> None:
    if await counter.get(ConsoleLoginThrottle, key) is None:
        try:
            async with counter.begin_nested():
                counter.add(ConsoleLoginThrottle(key=key, failures=0))
        except IntegrityError:
            pass  # a concurrent attempt created the row first


async def _release(services: PlatformServices, keys: Sequence[str], *, clear: bool) -> None:
    if not keys:
        return
    async with services.db.session() as counter:
        values = (
            {"failures": 0, "locked_until": None}
            if clear
            else {"failures": ConsoleLoginThrottle.failures - 1}
        )
        await counter.execute(
            update(ConsoleLoginThrottle)
            .where(
                ConsoleLoginThrottle.key.in_(keys),
                ConsoleLoginThrottle.failures > 0,
                ConsoleLoginThrottle.locked_until.is_(None),
            )
            .values(**values)
        )


async def purge_stale(services: PlatformServices) -> None:
    """Forget counts that would be reset anyway (run at each login, so the table stays small)."""
    now = services.clock.now()
    async with services.db.session() as counter:
        await counter.execute(
            delete(ConsoleLoginThrottle).where(
                or_(
                    and_(
                        ConsoleLoginThrottle.key.startswith("user:"), ConsoleLoginThrottle.locked_until <= now
                    ),
                    and_(
                        or_(
                            ConsoleLoginThrottle.locked_until.is_(None),
                            ConsoleLoginThrottle.locked_until <= now,
                        ),
                        ConsoleLoginThrottle.last_attempt_at <= now - LOCKOUT,
                    ),
                )
            )
        )
