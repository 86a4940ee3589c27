"""In production, what an operator meets at the doors: ``sealbot staff-add`` answers each refusal
in one line (no traceback), and the public port serves neither ``/metrics`` nor the API docs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot.app import create_app
from bot.cli import main
from tests.production_mode.test_refusals import _bot_settings
from tests.production_mode.test_refusals import production_env as production_env  # a fixture


@pytest.fixture
def production_cli(production_env: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    production_env.setenv("SEALBOT_PRODUCTION", "true")
    production_env.setenv("SEALBOT_SECRET_KEY", "a-real-secret-of-some-length")
    production_env.setenv("SEALBOT_PUBLIC_BASE_URL", "https://seal.example.cn")
    production_env.setenv("SEALBOT_PLATFORM_SERVICE_KEY", "a-real-service-key")
    production_env.setenv("SEALBOT_DATA_DIR", str(tmp_path))
    production_env.setenv("SEALBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    return production_env


def test_staff_add_in_production_answers_each_refusal_in_one_line(
    production_cli: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["staff-add", "wang", "--password", "short"]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == "sealbot staff-add: refused: 员工密码至少10位"
    assert "Traceback" not in out + err

    assert main(["staff-add", "wang", "--password", "a-long-enough-password-2026"]) == 0
    assert capsys.readouterr().out.startswith("staff user wang created")

    assert main(["staff-add", "wang", "--password", "another-long-password-2026"]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("sealbot staff-add: refused: ")
    assert "Traceback" not in out + err


async def test_the_public_port_of_production_serves_no_metrics_and_no_api_docs(
    production_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = create_app(_bot_settings(tmp_path))
    async with app.router.lifespan_context(app):  # the real start-up: container, mounts
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://seal.example.cn") as public:
            for path in ("/metrics", "/platform/docs", "/platform/openapi.json", "/platform/redoc", "/docs"):
                answer = await public.get(path)
                assert answer.status_code == 404, path
            # The service itself is up: the health check answers on the same port.
            assert (await public.get("/healthz")).status_code == 200
