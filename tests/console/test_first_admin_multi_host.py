"""The first admin of a multi-host or production platform: never a password left in a file.

The embedded default keeps its ``admin-password.txt`` (test_users_and_bootstrap.py). On
PostgreSQL or in production the start creates nobody and says how to; ``sealbot-platform
staff-add --generate-password`` creates the admin and shows the password once, on its own
output, and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.console.bootstrap import PASSWORD_FILE, ensure_bootstrap_admin
from seal_platform.settings import PlatformSettings
from seal_platform.staff import StaffUser
from tests.console.support import ConsoleClient


async def test_a_production_start_creates_no_admin_and_writes_no_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from seal_platform import migrate

    url = f"sqlite+aiosqlite:///{tmp_path}/platform.db"
    await migrate.upgrade(url)
    settings = PlatformSettings(database_url=url, data_dir=tmp_path / "platform", production=True)
    services = build_platform_services(settings)
    try:
        with caplog.at_level(logging.WARNING):
            assert await ensure_bootstrap_admin(services) is None
        async with services.db.session() as session:
            assert await session.scalar(select(func.count()).select_from(StaffUser)) == 0
    finally:
        await services.db.dispose()
    assert not (tmp_path / "platform" / PASSWORD_FILE).exists()
    assert any("sealbot-platform staff-add admin" in record.getMessage() for record in caplog.records)


def test_staff_add_generates_the_first_admin_password_and_shows_it_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "SEALBOT_"))}
    env.update(
        PLATFORM_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/platform.db",
        PLATFORM_DATA_DIR=str(tmp_path / "data"),
        PLATFORM_PRODUCTION="false",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "seal_platform.standalone",
            "staff-add",
            "admin",
            "--roles",
            "admin",
            "--generate-password",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "staff user admin created with roles admin"
    assert lines[1].startswith("password (shown once): ")
    password = lines[1].removeprefix("password (shown once): ")
    assert len(password) >= 20
    # Nowhere on disk but the database's hash of it.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert password not in done.stderr

    async def login() -> int:
        settings = PlatformSettings(database_url=env["PLATFORM_DATABASE_URL"], data_dir=tmp_path / "data")
        services = build_platform_services(settings)
        client = ConsoleClient(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_platform_app(services)),
                base_url="http://platform.test",
            )
        )
        try:
            return (await client.login("admin", password)).status_code
        finally:
            await client.http.aclose()
            await services.db.dispose()

    assert asyncio.run(login()) == 303
