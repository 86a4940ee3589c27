"""Server-side sessions of the staff console.

The browser holds only a random session id, in an HttpOnly, SameSite=Strict cookie scoped to
the console's path; the table keys the session by the id's SHA-256 so that a leaked table
yields no usable cookies. A session ends when it has been idle too long, when it reaches its
absolute lifetime, on logout, and when its staff member is disabled or gets a new password.
Each session has its own CSRF token, which every POST form carries back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.security import constant_time_equals, new_token, token_digest
from seal_platform.services import PlatformServices
from seal_platform.staff import StaffUser

SESSION_COOKIE = "console_session"
LOGIN_CSRF_COOKIE = "console_login_csrf"


@dataclass(frozen=True)
class SessionPolicy:
    """How long a console session lives; replace it in ``services.console_session_policy``."""

    idle_timeout: timedelta = timedelta(minutes=30)
    absolute_lifetime: timedelta = timedelta(hours=12)


def session_policy(services: PlatformServices) -> SessionPolicy:
    return services.console_session_policy or SessionPolicy()


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    # A one-shot message for the next page (post/redirect/get): {"kind": "ok"|"error", "text": ...}
    flash: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


@dataclass(frozen=True)
class StartedSession:
    """The cookie value (shown once, never stored) and the session's CSRF token."""

    session_id: str
    csrf_token: str


async def start_session(
    session: AsyncSession, services: PlatformServices, staff: StaffUser, *, client_ip: str
) -> StartedSession:
    """A fresh session for a successful login: a new id every time, so a planted one is useless."""
    now = services.clock.now()
    session_id = new_token()
    csrf = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            id_hash=token_digest(session_id),
            staff_id=staff.id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=now + session_policy(services).absolute_lifetime,
            client_ip=client_ip[:64],
            flash=None,
        )
    )
    await session.flush()
    return StartedSession(session_id=session_id, csrf_token=csrf)


@dataclass(frozen=True)
class ActiveSession:
    """A valid session and its staff member, loaded for one request."""

    row: ConsoleSession
    staff: StaffUser


async def load_session(
    session: AsyncSession, services: PlatformServices, session_id: str | None
) -> ActiveSession | None:
    """The live session for the cookie value, touched; ``None`` (and the row gone) when it expired."""
    if not session_id:
        return None
    row = await session.get(ConsoleSession, token_digest(session_id))
    if row is None:
        return None
    now = services.clock.now()
    idle_limit = row.last_seen_at + session_policy(services).idle_timeout
    if now >= row.expires_at or now >= idle_limit:
        await session.delete(row)
        return None
    staff = await session.get(StaffUser, row.staff_id)
    if staff is None or not staff.active:
        await session.delete(row)
        return None
    row.last_seen_at = now
    return ActiveSession(row=row, staff=staff)


async def end_session(session: AsyncSession, session_id: str | None) -> None:
    if session_id:
        await session.execute(
            delete(ConsoleSession).where(ConsoleSession.id_hash == token_digest(session_id))
        )


async def end_sessions_of(session: AsyncSession, staff_id: str) -> None:
    """Log a staff member out everywhere (disabled, or the password was reset)."""
    await session.execute(delete(ConsoleSession).where(ConsoleSession.staff_id == staff_id))


def csrf_matches(expected: str, submitted: str | None) -> bool:
    return bool(submitted) and constant_time_equals(expected, submitted or "")


def take_flash(row: ConsoleSession) -> dict[str, Any] | None:
    flash, row.flash = row.flash, None
    return flash


def set_flash(row: ConsoleSession, kind: str, text: str) -> None:
    row.flash = {"kind": kind, "text": text}


async def flash_to(session: AsyncSession, session_id: str | None, kind: str, text: str) -> None:
    """Leave a message for the next page of the session behind ``session_id``."""
    if session_id:
        row = await session.get(ConsoleSession, token_digest(session_id))
        if row is not None:
            set_flash(row, kind, text)


async def purge_expired(session: AsyncSession, services: PlatformServices) -> None:
    """Drop sessions nobody can use any more (run at each login, so the table stays small)."""
    now = services.clock.now()
    idle_cutoff = now - session_policy(services).idle_timeout
    await session.execute(
        delete(ConsoleSession).where(
            (ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen_at <= idle_cutoff)
        )
    )
