"""Who may use the console and what they may do: password login (``staff_signin``), the session of
each request, CSRF on every POST, and the roles each page and action needs.

Pages declare their roles with ``page(...)`` and actions with ``action(...)``; both load the
session from its cookie (a visitor without one is sent to the login page) and an action also
checks the form's CSRF token before its roles. Admin passes every role check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request

from seal_platform.console.rendering import console_base
from seal_platform.console.sessions import (
    SESSION_COOKIE,
    csrf_matches,
    load_session,
    take_flash,
)
from seal_platform.errors import Forbidden
from seal_platform.services import PlatformServices, get_services
from seal_platform.staff import StaffRole, StaffUser


class LoginRequired(Exception):
    """No live session: the visitor goes to the login page (and back to ``next`` after)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Forbidden):
    code = "csrf_refused"


@dataclass(frozen=True)
class ConsoleContext:
    """What a console request knows about its caller."""

    services: PlatformServices
    staff: StaffUser
    csrf_token: str
    flash: dict[str, str] | None
    base: str

    def can(self, *roles: StaffRole) -> bool:
        return has_any_role(self.staff, roles)


def has_any_role(staff: StaffUser, roles: tuple[StaffRole, ...]) -> bool:
    """Admin passes everything; otherwise one of ``roles`` (no roles listed: any staff member)."""
    return not roles or any(staff.has_role(role) for role in roles)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _context(request: Request, services: PlatformServices) -> ConsoleContext:
    """The caller's live session (touched, its flash taken), or ``LoginRequired``."""
    async with services.db.session() as session:
        active = await load_session(session, services, request.cookies.get(SESSION_COOKIE))
        if active is None:
            raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return ConsoleContext(
            services=services,
            staff=active.staff,
            csrf_token=active.row.csrf_token,
            flash=take_flash(active.row),
            base=console_base(request),
        )


def page(*roles: StaffRole) -> Callable[..., Awaitable[ConsoleContext]]:
    """A dependency for a page: a logged-in staff member with one of ``roles``."""

    async def dependency(
        request: Request, services: Annotated[PlatformServices, Depends(get_services)]
    ) -> ConsoleContext:
        context = await _context(request, services)
        _check_roles(context.staff, roles)
        return context

    return dependency


def action(*roles: StaffRole) -> Callable[..., Awaitable[ConsoleContext]]:
    """A dependency for a POST: a logged-in staff member, the session's CSRF token, and a role."""

    async def dependency(
        request: Request,
        services: Annotated[PlatformServices, Depends(get_services)],
        csrf_token: Annotated[str | None, Form()] = None,
    ) -> ConsoleContext:
        context = await _context(request, services)
        if not csrf_matches(context.csrf_token, csrf_token):
            raise CsrfRefused("页面已过期或来源不明，请刷新页面后重试。")
        _check_roles(context.staff, roles)
        return context

    return dependency


def _check_roles(staff: StaffUser, roles: tuple[StaffRole, ...]) -> None:
    if not has_any_role(staff, roles):
        raise Forbidden(
            "您的角色无权访问此页面或执行此操作。",
            code="console_role_required",
            roles=[role.value for role in roles],
        )
