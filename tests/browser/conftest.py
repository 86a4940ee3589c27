"""A real service on a free port, and Debian's Chromium driven headless by Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bot.app import create_app
from bot.settings import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


SHUTDOWN_GRACE_S = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveService:
    url: str
    app: Any

    @property
    def container(self) -> Any:
        return self.app.state.container

    def sms_code(self, phone: str, purpose: str) -> str:
        return str(self.container.platform_services.sms_provider.last_code(phone, purpose))


@pytest.fixture
def live_service(tmp_path: Path) -> Iterator[LiveService]:
    port = free_port()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        data_dir=tmp_path / "var",
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        event_poll_seconds=0.2,
    )
    app = create_app(settings)
    # A chat page's long poll (25 s) does not end when the page goes away: the web chat does
    # not watch for the client's disconnect, and uvicorn waits for open requests before it
    # stops. The grace period bounds that wait; teardown took 15 s (the join's timeout) before.
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_S
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise RuntimeError("service did not start")
    yield LiveService(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    thread.join(timeout=SHUTDOWN_GRACE_S + 10)
    assert not thread.is_alive(), "the served app did not shut down"


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        page = context.new_page()
        yield page
        context.close()
        browser.close()
