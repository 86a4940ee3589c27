"""``sealbot-platform``: the platform started as its own service, as a remote-mode deployment runs it."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SERVICE_KEY = "standalone-test-service-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "SEALBOT_"))}
    env.update(
        PLATFORM_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/platform.db",
        PLATFORM_DATA_DIR=str(tmp_path / "data"),
        PLATFORM_SERVICE_KEY=SERVICE_KEY,
    )
    env.update(extra)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "seal_platform.standalone", *args]


@pytest.fixture
def platform_service(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - this interpreter and fixed arguments
        _cli("serve", "--port", str(port)),
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(base + "/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("sealbot-platform serve did not answer within 60 s")
        yield base
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so that the exit status says why.
        assert process.wait(timeout=20) == -signal.SIGTERM
        assert process.stdout is not None
        log = process.stdout.read().decode()
        process.stdout.close()
        assert "Finished server process" in log


def test_the_service_answers_with_its_service_key_and_refuses_without(platform_service: str) -> None:
    refused = httpx.get(platform_service + "/v1/prices", timeout=5)
    assert refused.status_code == 401
    assert refused.json()["code"] == "service_credential_missing"
    prices = httpx.get(
        platform_service + "/v1/prices", headers={"Authorization": f"Bearer {SERVICE_KEY}"}, timeout=5
    )
    assert prices.status_code == 200, prices.text
    assert prices.json()["currency"] == "CNY"


def test_migrate_applies_the_schema_once(tmp_path: Path) -> None:
    for _ in range(2):
        done = subprocess.run(  # noqa: S603 - this interpreter and fixed arguments
            _cli("migrate"), env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "platform migrations applied"


def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter and fixed arguments
        _cli("migrate"),
        env=_env(tmp_path, PLATFORM_UPLOAD_MAX_BYTES="lots"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "sealbot-platform: configuration error: PLATFORM_UPLOAD_MAX_BYTES: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_a_database_that_does_not_answer_is_one_line_naming_it(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    url = f"postgresql+asyncpg://platform:hunter2@127.0.0.1:{port}/platform"
    done = subprocess.run(  # noqa: S603 - this interpreter and fixed arguments
        _cli("serve", "--port", str(_free_port())),
        env=_env(tmp_path, PLATFORM_DATABASE_URL=url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"sealbot-platform: the database at postgresql+asyncpg://platform:***@127.0.0.1:{port}/platform"
        " does not answer: "
    ), lines[0]


def test_the_console_and_the_api_carry_the_security_headers(platform_service: str) -> None:
    for path in ("/console/login", "/v1/prices"):
        response = httpx.get(platform_service + path, timeout=5)
        assert response.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path
        assert "strict-transport-security" not in response.headers  # the test runs on http


def test_staff_add_migrates_with_the_field_cipher_like_migrate_and_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ``staff-add`` may be the first command after an upgrade: the migration that encrypts the
    # mailing addresses and invoice data already stored needs the platform's field cipher
    from seal_platform import migrate, standalone
    from seal_platform.security import FieldCipher, field_cipher_of
    from seal_platform.settings import PlatformSettings

    settings = PlatformSettings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}",
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-for-field-encryption",
    )
    ciphers: list[FieldCipher | None] = []
    real_upgrade = migrate.upgrade

    async def upgrade(url: str, field_cipher: FieldCipher | None = None) -> None:
        ciphers.append(field_cipher)
        await real_upgrade(url, field_cipher)

    monkeypatch.setattr(migrate, "upgrade", upgrade)
    args = standalone.build_parser().parse_args(
        ["staff-add", "wang", "--roles", "admin", "--generate-password"]
    )
    assert args.handler(settings, args) == 0
    assert "staff user wang created with roles admin" in capsys.readouterr().out
    assert len(ciphers) == 1
    assert ciphers[0] is not None
    assert ciphers[0].current_version == field_cipher_of(settings).current_version


def test_a_database_migrated_by_a_newer_release_is_one_line_for_migrate_and_serve(tmp_path: Path) -> None:
    migrated = subprocess.run(  # noqa: S603 - this interpreter and fixed arguments
        _cli("migrate"), env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    # What a newer release's migration leaves: a revision this release has never heard of.
    with sqlite3.connect(tmp_path / "platform.db") as db:
        db.execute("UPDATE alembic_version_platform SET version_num = 'f00dfeedbeef'")
    for command in (("migrate",), ("serve", "--port", str(_free_port()))):
        done = subprocess.run(  # noqa: S603 - this interpreter and fixed arguments
            _cli(*command), env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("sealbot-platform: the database at sqlite+aiosqlite:///"), last
        assert "is at migration 'f00dfeedbeef', which this release does not have" in last, last


def test_a_port_another_program_listens_on_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = subprocess.run(  # noqa: S603 - this interpreter and fixed arguments
            _cli("serve", "--host", "127.0.0.1", "--port", str(port)),
            env=_env(tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"sealbot-platform: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert not (tmp_path / "platform.db").exists()  # nothing was migrated
