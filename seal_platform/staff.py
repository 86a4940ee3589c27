"""Platform staff: users with roles, their login tokens, and the ``require_staff`` dependency.

Roles follow the manual's back office: reviewers (审核), producers (制作), shippers (邮寄),
finance (开票), support, and admin (everything). A staff token is sent as ``X-Staff-Token``;
every door signs in through ``staff_signin.sign_in``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import JSON, Boolean, ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated
from seal_platform.security import new_token, token_digest
from seal_platform.services import PlatformServices, get_services

STAFF_TOKEN_HEADER = "X-Staff-Token"


class StaffRole(StrEnum):
    REVIEWER = "reviewer"
    PRODUCER = "producer"
    SHIPPER = "shipper"
    FINANCE = "finance"
    SUPPORT = "support"
    ADMIN = "admin"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def has_role(self, role: StaffRole) -> bool:
        return StaffRole.ADMIN.value in self.roles or role.value in self.roles

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


class StaffToken(Base):
    __tablename__ = "staff_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


async def create_staff_user(
    session: AsyncSession,
    services: PlatformServices,
    *,
    username: str,
    password: str,
    roles: list[StaffRole],
    display_name: str | None = None,
) -> StaffUser:
    """Add a staff member (from the operator CLI or the admin console)."""
    if len(password) < 10:
        raise InvalidInput("staff passwords have at least 10 characters", code="weak_password")
    if await session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise Conflict("username taken", code="staff_username_taken")
    user = StaffUser(
        username=username,
        display_name=display_name or username,
        password_hash=await services.password_hasher.hash_async(password),
        roles=sorted({StaffRole(r).value for r in roles}),
        active=True,
        created_at=services.clock.now(),
    )
    session.add(user)
    await session.flush()
    return user


async def issue_token(session: AsyncSession, services: PlatformServices, user: StaffUser) -> str:
    """A new staff token for a signed-in user (``staff_signin.sign_in`` checks the password)."""
    token = new_token()
    now = services.clock.now()
    session.add(
        StaffToken(
            token_hash=token_digest(token),
            staff_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=services.settings.staff_token_ttl_seconds),
        )
    )
    return token


async def staff_for_token(session: AsyncSession, services: PlatformServices, token: str) -> StaffUser:
    row = await session.get(StaffToken, token_digest(token))
    if row is None or row.expires_at <= services.clock.now():
        raise NotAuthenticated("staff login required", code="staff_token_invalid")
    user = await session.get(StaffUser, row.staff_id)
    if user is None or not user.active:
        raise NotAuthenticated("staff login required", code="staff_token_invalid")
    return user


_staff_token = APIKeyHeader(name=STAFF_TOKEN_HEADER, auto_error=False, scheme_name="StaffToken")


async def current_staff(
    services: Annotated[PlatformServices, Depends(get_services)],
    token: Annotated[str | None, Security(_staff_token)],
) -> StaffUser:
    if not token:
        raise NotAuthenticated("staff login required", code="staff_token_missing")
    async with services.db.session() as session:
        return await staff_for_token(session, services, token)


StaffDep = Annotated[StaffUser, Depends(current_staff)]


def require_staff(role: StaffRole) -> Callable[[StaffUser], Awaitable[StaffUser]]:
    """A dependency admitting staff with ``role`` (or admin)."""

    async def check(staff: StaffDep) -> StaffUser:
        if not staff.has_role(role):
            raise Forbidden(
                "this action needs another staff role", code="staff_role_required", role=role.value
            )
        return staff

    return check
