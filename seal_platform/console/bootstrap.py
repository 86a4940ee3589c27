"""The first admin: on a fresh platform nobody could log in to the console to create staff.

In the embedded default (one host, SQLite, production off) ``ensure_bootstrap_admin`` creates
user ``admin`` with a random password when no staff user exists at all, writes the password to
``<data_dir>/admin-password.txt`` (mode 0600) and logs where it is, once.

In production, and on PostgreSQL (several hosts, where a file on one of them is found by
nobody and lingers), no password is ever written to a file: the start logs that there is no
staff user yet, and the operator creates the first admin with ``sealbot-platform staff-add``
(remote mode) or ``sealbot staff-add`` (embedded), which prints a generated password once.
``create_staff_user`` is what those commands call.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from seal_platform.console.staff_admin import add_staff_user, parse_roles
from seal_platform.errors import Conflict
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.staff import StaffRole, StaffUser

log = logging.getLogger(__name__)

BOOTSTRAP_USERNAME = "admin"
PASSWORD_FILE = "admin-password.txt"
CLI_ACTOR = "operator:cli"


def password_file(services: PlatformServices) -> Path:
    return Path(services.settings.data_dir) / PASSWORD_FILE


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start (no window in which another user could read it), and forced
    # to 0600 should an old file with wider permissions be in the way.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def writes_password_file(settings: PlatformSettings) -> bool:
    """Only the embedded default leaves the first admin's password in a file (README)."""
    return not settings.production and settings.database_url.startswith("sqlite")


def generate_password() -> str:
    return secrets.token_urlsafe(18)


async def ensure_bootstrap_admin(services: PlatformServices) -> str | None:
    """The new admin's password when this call created it; ``None`` when staff already exist,
    or when this deployment creates its first admin with the CLI instead."""
    async with services.db.session() as session:
        existing = await session.scalar(select(func.count()).select_from(StaffUser))
    if existing:
        return None
    if not writes_password_file(services.settings):
        log.warning(
            "no staff user yet: create the first admin with "
            "`sealbot-platform staff-add admin --roles admin --generate-password` "
            "(embedded: `sealbot staff-add ...`); the password is shown once, never stored in a file"
        )
        return None
    password = generate_password()
    try:
        async with services.db.session() as session:
            await add_staff_user(
                session,
                services,
                actor="system:bootstrap",
                username=BOOTSTRAP_USERNAME,
                password=password,
                roles=[StaffRole.ADMIN],
                display_name="管理员",
            )
    except (Conflict, IntegrityError):
        # Another worker starting at the same moment created it first.
        return None
    path = password_file(services)
    _write_secret(path, password + "\n")
    # Never the password itself: logs are shipped and kept where the file's 0600 does not reach.
    log.warning("created console user %r; its password is in %s (mode 0600)", BOOTSTRAP_USERNAME, path)
    return password


async def create_staff_user(
    services: PlatformServices, username: str, password: str, roles: list[str] | list[StaffRole]
) -> StaffUser:
    """Add a staff member from the operator CLI (audited as ``operator:cli``)."""
    async with services.db.session() as session:
        return await add_staff_user(
            session,
            services,
            actor=CLI_ACTOR,
            username=username,
            password=password,
            roles=parse_roles(str(role) for role in roles),
        )
