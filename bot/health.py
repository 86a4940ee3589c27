"""Readiness: whether this worker can do its job now, for the proxy and the orchestrator.

``/healthz`` only says the process runs (liveness: restart it when it stops answering).
``/readyz`` runs every ``Readiness`` check at once, each bounded by a timeout, and answers 200
``{"status": "ready", "checks": {...}}`` or 503 with ``"unready"`` and, for each check that
failed, why: the bot's database, the platform (its own ``/readyz``, so its database too), the
event bus, and Redis when it is configured. A worker that is not ready keeps running; it keeps
answering from the database and its periodic sweeps, and turns ready again by itself once the
dependency is back (the bus reconnects on its own).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.errors import SealbotError
from dbkit.bus import EventBus
from platform_client.client import PlatformClient

log = logging.getLogger("sealbot.health")

CHECK_SECONDS = 3.0

Check = Callable[[], Awaitable[None]]


class NotReady(SealbotError):
    """A dependency answered, but not as a ready one."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


class Readiness:
    def __init__(self, checks: Mapping[str, Check], *, timeout: float = CHECK_SECONDS) -> None:
        self.checks = dict(checks)
        self.timeout = timeout
        self._failing: set[str] = set()

    async def run(self) -> list[CheckResult]:
        names = list(self.checks)
        results = list(await asyncio.gather(*(self._one(name) for name in names)))
        for result in results:
            # Logged when a check turns bad and when it is good again, not on every probe.
            if not result.ok and result.name not in self._failing:
                self._failing.add(result.name)
                log.warning("not ready: %s: %s", result.name, result.detail)
            elif result.ok and result.name in self._failing:
                self._failing.discard(result.name)
                log.info("ready again: %s", result.name)
        return results

    async def _one(self, name: str) -> CheckResult:
        try:
            async with asyncio.timeout(self.timeout):
                await self.checks[name]()
        except TimeoutError:
            return CheckResult(name, False, f"no answer within {self.timeout:g} s")
        except Exception as exc:  # every failure means the same here: not ready, and why
            return CheckResult(name, False, _reason(exc))
        return CheckResult(name, True, "ok")

    async def report(self, *, reasons: bool = True) -> tuple[bool, dict[str, Any]]:
        """Whether every check passed, and the JSON body of ``/readyz``. Without ``reasons``
        (the public port in production) a failed check says only ``down``: the reason names
        internal hosts and is in the log."""
        results = await self.run()
        ready = all(r.ok for r in results)
        body = {
            "status": "ready" if ready else "unready",
            "checks": {r.name: r.detail if r.ok or reasons else "down" for r in results},
        }
        return ready, body


def _reason(exc: BaseException) -> str:
    # The exception's class and first line: enough to act on; never a URL (it may hold a password).
    first = str(exc).splitlines()[0] if str(exc) else ""
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text[:200]


def database_check(db: AsyncEngine) -> Check:
    async def check() -> None:
        async with db.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    return check


def platform_check(platform: PlatformClient) -> Check:
    return platform.ready


def bus_check(bus: EventBus) -> Check:
    async def check() -> None:
        if not bus.healthy:
            raise NotReady("the event bus listener is not connected (reconnecting)")

    return check


class RedisCheck:
    """PING on a connection of its own (the locks' and the bus's connections are busy)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.from_url(
            url, socket_timeout=CHECK_SECONDS, socket_connect_timeout=CHECK_SECONDS
        )

    async def __call__(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()
