"""In production /metrics and the API docs leave the public port; the admin port serves them."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from bot.admin import create_admin_app
from bot.app import build_container, create_app
from bot.settings import Settings


def _settings(tmp_path: Path, *, production: bool) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        data_dir=tmp_path / "var",
        production=production,
        public_base_url="https://seal.example.cn",
        secret_key=SecretStr("bot-secret-of-the-operator"),
        platform_service_key=SecretStr("service-key-of-the-operator"),
    )


def test_the_public_app_of_production_serves_no_metrics(tmp_path: Path) -> None:
    production = create_app(_settings(tmp_path, production=True))
    demo = create_app(_settings(tmp_path, production=False))
    assert "/metrics" not in {getattr(route, "path", "") for route in production.routes}
    assert "/metrics" in {getattr(route, "path", "") for route in demo.routes}


async def test_the_admin_port_serves_metrics_and_the_platform_api_docs(tmp_path: Path) -> None:
    public = create_app(_settings(tmp_path, production=False))
    container = await build_container(_settings(tmp_path, production=False))
    public.state.container = container
    try:
        admin = create_admin_app(public)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin), base_url="http://admin"
        ) as http:
            metrics = await http.get("/metrics")
            schema = await http.get("/platform/openapi.json")
            docs = await http.get("/platform/docs")
            ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "platform": "ok", "bus": "ok"}
        assert metrics.status_code == 200
        assert "sealbot_outbox_sent_total" in metrics.text
        assert "/v1/staff/sessions" in schema.json()["paths"]
        assert "swagger" in docs.text.lower()
    finally:
        await container.stop()
