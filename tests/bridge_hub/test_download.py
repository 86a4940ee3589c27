"""The chat's download link: the install page (Windows and Linux steps, Chinese first) and the
wheel built by scripts/build-bridge-wheel, served by the service itself."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from bot.bridge.router import bridge_router
from tests.bridge_hub.conftest import Service


def app_with(service: Service, wheel_dir: Path) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(bridge_router(service.hub, wheel_dir=wheel_dir))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://seal.test")


async def test_the_install_page_links_the_built_wheel_and_the_link_serves_it(
    service: Service, tmp_path: Path
) -> None:
    wheel = tmp_path / "sealbot_ukey_bridge-1.2.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 wheel bytes")
    (tmp_path / "other-secret.txt").write_text("not for download")
    async with app_with(service, tmp_path) as client:
        page = await client.get("/bridge/install")
        assert page.status_code == 200
        text = page.text
        assert text.index("UKey 助手") < text.index("UKey helper"), "Chinese first"
        assert "Windows" in text
        assert "Linux" in text
        assert "ukey-bridge doctor" in text
        link = f"http://seal.test/bridge/download/{wheel.name}"
        assert f"py -m pip install {link}" in text
        assert f"python3 -m pip install --user {link}" in text
        served = await client.get(f"/bridge/download/{wheel.name}")
        assert served.status_code == 200
        assert served.content == wheel.read_bytes()
        assert (await client.get("/bridge/download/other-secret.txt")).status_code == 404


async def test_without_a_built_wheel_the_page_says_how_to_build_it(service: Service, tmp_path: Path) -> None:
    async with app_with(service, tmp_path) as client:
        page = await client.get("/bridge/install")
    assert "scripts/build-bridge-wheel" in page.text
