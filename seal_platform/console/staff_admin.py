"""Staff user management by an admin (or the operator CLI): create, reset a password, disable,
enable. Each change is written to the audit log; passwords never are."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from seal_platform.console.sessions import end_sessions_of
from seal_platform.errors import InvalidInput, NotFound, RuleViolation
from seal_platform.services import PlatformServices
from seal_platform.staff import StaffRole, StaffUser
from seal_platform.staff import create_staff_user as insert_staff_user
from seal_platform.staff_actions import record_audit

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10


def _public(user: StaffUser) -> dict[str, object]:
    return {"username": user.username, "roles": list(user.roles), "active": user.active}


def parse_roles(values: Iterable[str]) -> list[StaffRole]:
    try:
        roles = sorted({StaffRole(value) for value in values})
    except ValueError as exc:
        raise InvalidInput("未知的角色", code="unknown_role") from exc
    if not roles:
        raise InvalidInput("请至少选择一个角色", code="roles_required")
    return roles


async def list_staff(session: AsyncSession) -> list[StaffUser]:
    return list(await session.scalars(select(StaffUser).order_by(StaffUser.username)))


async def add_staff_user(
    session: AsyncSession,
    services: PlatformServices,
    *,
    actor: str,
    username: str,
    password: str,
    roles: list[StaffRole],
    display_name: str | None = None,
) -> StaffUser:
    username = username.strip().lower()
    if not USERNAME.fullmatch(username):
        raise InvalidInput("用户名为2到64位小写字母、数字、点、下划线或连字符", code="invalid_staff_username")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"员工密码至少{MIN_PASSWORD}位", code="weak_password")
    user = await insert_staff_user(
        session,
        services,
        username=username,
        password=password,
        roles=roles,
        display_name=(display_name or "").strip() or None,
    )
    record_audit(
        session,
        actor=actor,
        action="create_staff_user",
        object_type="staff_user",
        object_id=user.id,
        before=None,
        after=_public(user),
        at=services.clock.now(),
    )
    return user


async def _get(session: AsyncSession, staff_id: str) -> StaffUser:
    user = await session.get(StaffUser, staff_id)
    if user is None:
        raise NotFound("staff user not found", staff_id=staff_id)
    return user


async def reset_password(
    session: AsyncSession, services: PlatformServices, *, actor: str, staff_id: str, password: str
) -> StaffUser:
    """A new password; the member's open console sessions end."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"员工密码至少{MIN_PASSWORD}位", code="weak_password")
    user = await _get(session, staff_id)
    user.password_hash = await services.password_hasher.hash_async(password)
    await end_sessions_of(session, user.id)
    record_audit(
        session,
        actor=actor,
        action="reset_staff_password",
        object_type="staff_user",
        object_id=user.id,
        before={"username": user.username},
        after={"username": user.username, "password": "changed"},
        at=services.clock.now(),
    )
    return user


async def set_active(
    session: AsyncSession, services: PlatformServices, *, actor: StaffUser, staff_id: str, active: bool
) -> StaffUser:
    """Disable (sessions end at once) or enable again. Nobody disables their own account, so
    the last admin cannot lock everyone out by accident."""
    user = await _get(session, staff_id)
    if not active and user.id == actor.id:
        raise RuleViolation("不能停用自己的账号", code="cannot_disable_self")
    before = _public(user)
    user.active = active
    if not active:
        await end_sessions_of(session, user.id)
    record_audit(
        session,
        actor=actor.actor,
        action="enable_staff_user" if active else "disable_staff_user",
        object_type="staff_user",
        object_id=user.id,
        before=before,
        after=_public(user),
        at=services.clock.now(),
    )
    return user
