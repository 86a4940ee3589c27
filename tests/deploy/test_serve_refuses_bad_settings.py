"""``sealbot serve`` with a setting that would stop its start-up says so in one line naming the
setting and exits 2, before it listens: not the server's "Application startup failed" with a
traceback (exit 3), which is what an operator got for a channel, the support desk or the
in-process platform (production's demo parts) until the service checked them first. A database
that does not answer is one line too (exit 1), naming its URL without the password."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.channels.local_server import serve_locally
from bot.channels.telegram.fake_server import FakeTelegram
from bot.channels.telegram.fake_server import create_app as create_telegram_app
from tests.contract.postgres import PG_URL, require_postgres
from tests.fixtures.served import free_port
from tests.production_mode.test_refusals import READY

PRODUCTION = {
    "SEALBOT_PRODUCTION": "true",
    "SEALBOT_SECRET_KEY": "a-real-secret-of-some-length",
    "SEALBOT_PUBLIC_BASE_URL": "https://seal.example.cn",
    "SEALBOT_PLATFORM_SERVICE_KEY": "a-real-service-key",
}


SERVE = (sys.executable, "-c", "from bot.cli import main; raise SystemExit(main(['serve']))")
PREFIXES = ("SEALBOT_", "PLATFORM_", "WECHAT_", "TELEGRAM_", "SUPPORT_", "SCHEDULER_")


def _clean_environment(tmp_path: Path, **env: str) -> dict[str, str]:
    """This process's environment without any of the service's settings, and ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    clean.update(
        SEALBOT_DATA_DIR=str(tmp_path / "var"), SEALBOT_HOST="127.0.0.1", SEALBOT_PORT=str(free_port())
    )
    clean.update(env)
    return clean


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(SERVE, tmp_path, **env)


def run_cli(command: tuple[str, ...], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter and fixed arguments
        command,
        env=_clean_environment(tmp_path, **env),
        cwd=tmp_path,  # no .env of the checkout
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"TELEGRAM_ENABLED": "true"}, "TELEGRAM_TOKEN: required when the Telegram channel is enabled"),
        (
            {"TELEGRAM_ENABLED": "true", "TELEGRAM_TOKEN": "123:abc"},
            "TELEGRAM_WEBHOOK_SECRET: required in webhook mode (TELEGRAM_MODE=webhook)",
        ),
        ({"TELEGRAM_MODE": "push"}, "TELEGRAM_MODE: Input should be 'webhook' or 'polling'"),
        (
            {"WECHAT_ENABLED": "true", "WECHAT_APPID": "wx1234567890abcdef"},
            "WECHAT_APPID and WECHAT_TOKEN: required when the WeChat channel is enabled",
        ),
        (
            {"SUPPORT_TIME_ZONE": "Mars/Olympus"},
            "SUPPORT_TIME_ZONE: Value error, unknown time zone 'Mars/Olympus'",
        ),
        (
            {"PLATFORM_UPLOAD_MAX_BYTES": "lots"},
            "PLATFORM_UPLOAD_MAX_BYTES: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {**PRODUCTION, **READY, "PLATFORM_SMS_PROVIDER": "console"},
            "PLATFORM_SMS_PROVIDER: ",
        ),
    ],
    ids=[
        "telegram-token",
        "telegram-secret",
        "telegram-mode",
        "wechat-token",
        "support",
        "platform",
        "production",
    ],
)
def test_a_setting_that_would_stop_the_start_up_is_one_line_before_listening(
    tmp_path: Path, env: dict[str, str], line: str
) -> None:
    done = serve(tmp_path, **env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "Uvicorn running" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("sealbot: configuration error: " + line), lines[0]


async def test_polling_mode_needs_no_webhook_secret_and_the_service_starts(tmp_path: Path) -> None:
    """The check refuses what cannot work, not what merely looks unusual: polling has no
    webhook, so no secret. The service starts (against the fake Bot API) and is stopped."""
    token = "123456:polling-token"
    async with serve_locally(create_telegram_app(FakeTelegram(token))) as telegram_base:
        env = _clean_environment(
            tmp_path,
            TELEGRAM_ENABLED="true",
            TELEGRAM_TOKEN=token,
            TELEGRAM_MODE="polling",
            TELEGRAM_POLLING_TIMEOUT="0",  # no long poll left open when the fake stops
            TELEGRAM_API_BASE_URL=f"{telegram_base}/bot",
            TELEGRAM_FILE_BASE_URL=f"{telegram_base}/file/bot",
        )
        process = await asyncio.create_subprocess_exec(
            *SERVE, env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        seen: list[str] = []
        try:
            assert process.stdout is not None
            async with asyncio.timeout(60):
                while line := (await process.stdout.readline()).decode():
                    seen.append(line)
                    if "Application startup complete" in line or "configuration error" in line:
                        break
            assert any("Application startup complete" in s for s in seen), "".join(seen[-20:])
        finally:
            process.terminate()
            await process.wait()


def refusal(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What a command that refused to start over the host's resources printed on stderr, once
    it is sure it refused that way: exit code 1 and no traceback."""
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()


def test_a_database_that_does_not_answer_is_one_line_naming_it_without_its_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    done = serve(
        tmp_path, SEALBOT_DATABASE_URL=f"postgresql+asyncpg://sealbot:hunter2@127.0.0.1:{port}/sealbot"
    )
    lines = refusal(done)
    assert "hunter2" not in done.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"sealbot: the database at postgresql+asyncpg://sealbot:***@127.0.0.1:{port}/sealbot does not answer: "
    ), lines[0]


@pytest.mark.postgres
async def test_a_database_the_server_says_does_not_exist_is_named_as_refused_not_as_silent(
    tmp_path: Path,
) -> None:
    await require_postgres()
    # The test server answers; the database in the URL is one it does not have.
    missing = (
        make_url(PG_URL).set(database=f"sealbot_missing_{os.getpid()}").render_as_string(hide_password=False)
    )
    done = await asyncio.to_thread(serve, tmp_path, SEALBOT_DATABASE_URL=missing)
    lines = refusal(done)
    assert len(lines) == 1, lines
    assert "refuses the connection" in lines[0], lines[0]
    assert f"sealbot_missing_{os.getpid()}" in lines[0], lines[0]
    assert "does not exist" in lines[0], lines[0]


@pytest.mark.parametrize("setting", ["SEALBOT_DATA_DIR", "SEALBOT_DATABASE_URL"])
def test_a_data_directory_or_database_file_that_cannot_be_created_is_one_line(
    tmp_path: Path, setting: str
) -> None:
    # A path through a regular file cannot be created, whoever runs the test (root included).
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the operator meant a mount point")
    where = blocker / "var"
    value = str(where) if setting == "SEALBOT_DATA_DIR" else f"sqlite+aiosqlite:///{where}/bot.db"
    done = serve(tmp_path, **{setting: value})
    lines = refusal(done)
    assert len(lines) == 1, lines
    assert str(where) in lines[0], lines[0]
    assert "cannot be used" in lines[0], lines[0]


def test_a_database_migrated_by_a_newer_release_is_one_line_for_migrate_and_serve(tmp_path: Path) -> None:
    env = {"SEALBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db"}
    migrate = (sys.executable, "-c", "from bot.cli import main; raise SystemExit(main(['migrate']))")
    done = run_cli(migrate, tmp_path, **env)
    assert done.returncode == 0, done.stderr[-2000:]
    # What a newer release's migration leaves: a revision this release has never heard of.
    with sqlite3.connect(tmp_path / "bot.db") as db:
        db.execute("UPDATE alembic_version_bot SET version_num = 'f00dfeedbeef'")
    for command in (migrate, SERVE):
        done = run_cli(command, tmp_path, **env)
        last = refusal(done)[-1]
        assert last.startswith(
            f"sealbot: the database at sqlite+aiosqlite:///{tmp_path}/bot.db is at migration"
        ), last
        assert "'f00dfeedbeef', which this release does not have" in last, last


def test_a_migration_that_fails_is_one_line_naming_the_database(tmp_path: Path) -> None:
    # Another program's database: a table of the same name as one of ours, and no version of
    # ours, so the first migration cannot create it.
    with sqlite3.connect(tmp_path / "other.db") as db:
        db.execute("CREATE TABLE conversations (anything TEXT)")
    done = serve(tmp_path, SEALBOT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/other.db")
    last = refusal(done)[-1]
    assert last.startswith(
        f"sealbot: migrating the database at sqlite+aiosqlite:///{tmp_path}/other.db failed: "
    ), last
    assert "already exists" in last, last
    assert last.endswith("(`sealbot migrate` shows the whole error)"), last


@pytest.mark.parametrize("setting", ["SEALBOT_PORT", "SEALBOT_ADMIN_PORT"])
def test_a_port_another_program_listens_on_is_one_line_before_anything_starts(
    tmp_path: Path, setting: str
) -> None:
    with socket.socket() as other:  # another program (or a sealbot already running)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = serve(tmp_path, **{setting: str(port)})
    lines = refusal(done)
    assert lines == [f"sealbot: {setting}: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert not (tmp_path / "var").exists() or not any((tmp_path / "var").rglob("*.db"))  # nothing migrated
