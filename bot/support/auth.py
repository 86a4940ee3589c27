"""Staff login and console sessions for the support inbox.

Credentials and roles belong to the platform (``StaffAuthenticator``; the real one asks the
platform, tests may inject another). The console keeps its own server-side sessions: the
cookie holds a random token, the table holds only its hash, and each session has a CSRF token
that every form post must echo.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import SealbotError
from bot.support.models import StaffSessionRow
from platform_client.base import PlatformTransportClient
from platform_client.errors import InvalidInput, NotAuthenticated, PlatformClientError, RateLimited
from platform_client.staff_sessions import StaffSessionsAPI

SUPPORT_ROLES = frozenset({"support", "admin"})


class StaffLoginRefused(SealbotError):
    """Wrong credentials, or a staff member without a support role."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StaffDirectoryUnavailable(SealbotError):
    """The platform could not be asked; the login may succeed later."""


@dataclass(frozen=True)
class StaffIdentity:
    username: str
    roles: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class StaffAuthenticator(Protocol):
    async def authenticate(self, username: str, password: str, client_ip: str) -> StaffIdentity:
        """The staff member, or ``StaffLoginRefused``."""
        ...


class PlatformStaffAuthenticator:
    """Asks the platform (``POST /v1/staff/sessions``) and admits support and admin staff."""

    def __init__(self, platform: PlatformTransportClient) -> None:
        self._api = StaffSessionsAPI(platform)

    async def authenticate(self, username: str, password: str, client_ip: str) -> StaffIdentity:
        try:
            session = await self._api.login(username, password, client_ip)
        except (NotAuthenticated, InvalidInput) as exc:
            raise StaffLoginRefused("bad_credentials") from exc
        except RateLimited as exc:
            # The platform's throttle, shared with the console and the staff API.
            raise StaffLoginRefused("locked") from exc
        except PlatformClientError as exc:
            raise StaffDirectoryUnavailable(str(exc)) from exc
        roles = tuple(session.roles)
        if not SUPPORT_ROLES & set(roles):
            raise StaffLoginRefused("no_support_role")
        return StaffIdentity(session.username, roles)


@dataclass(frozen=True)
class ConsoleSession:
    username: str
    roles: tuple[str, ...]
    csrf: str
    expires_at: datetime

    @property
    def identity(self) -> StaffIdentity:
        return StaffIdentity(self.username, self.roles)

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleSessions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, lifetime: timedelta) -> None:
        self._sessions = sessions
        self._lifetime = lifetime

    async def open(self, identity: StaffIdentity, now: datetime) -> tuple[str, ConsoleSession]:
        """A new session; returns the cookie value (never stored) and the session."""
        token = secrets.token_urlsafe(32)
        row = StaffSessionRow(
            token_hash=_digest(token),
            username=identity.username,
            display_name=identity.username,
            roles=list(identity.roles),
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + self._lifetime,
        )
        async with self._sessions() as session, session.begin():
            # Expired sessions are swept as new ones open: the table stays small.
            await session.execute(sa.delete(StaffSessionRow).where(StaffSessionRow.expires_at <= now))
            session.add(row)
        return token, ConsoleSession(row.username, tuple(row.roles), row.csrf, row.expires_at)

    async def find(self, token: str | None, now: datetime) -> ConsoleSession | None:
        if not token or len(token) > 100:
            return None
        async with self._sessions() as session:
            row = await session.get(StaffSessionRow, _digest(token))
        if row is None or row.expires_at <= now:
            return None
        return ConsoleSession(row.username, tuple(row.roles), row.csrf, row.expires_at)

    async def close(self, token: str | None) -> None:
        if not token:
            return
        async with self._sessions() as session, session.begin():
            await session.execute(
                sa.delete(StaffSessionRow).where(StaffSessionRow.token_hash == _digest(token))
            )
