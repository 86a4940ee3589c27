"""The multi-host topology of docs/deploy.md, run as plain processes (CI cannot run Docker).

Three ``sealbot serve`` workers, each with its own port and data directory as the systemd unit
starts them, on one PostgreSQL database; the platform as ``sealbot-platform serve`` (remote
mode) on its own database; a round-robin proxy in front (``bench.proxy``, nginx's part). What a
deployment must hold across workers:

- every worker is live (``/healthz``; ``/readyz`` is wired on another branch);
- a web-chat registration whose requests are spread over all three workers completes, the
  verification code read from the platform's SMS page and the password typed on the secure page;
- a file uploaded through one worker is served by each of the others (the shared store).
"""

from __future__ import annotations

import hashlib

import httpx
import pytest

from bench.topology import Cluster
from bot.channels.webchat.sessions import COOKIE
from tests.deploy.conftest import StartCluster
from tests.deploy.webchat import Browser, sms_code

pytestmark = pytest.mark.postgres

PHONE = "13800138471"
PASSWORD = "Xq7secretPass99"


@pytest.fixture
async def cluster(start_cluster: StartCluster) -> Cluster:
    return await start_cluster(3)


async def test_three_workers_behind_a_proxy_serve_one_registration_and_share_files(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=5) as direct:
        for worker in cluster.bots:
            assert (await direct.get(worker.url + "/healthz")).status_code == 200, worker.name

    browser = Browser(cluster.proxy.url)
    try:
        await browser.open()
        await browser.say("注册")
        assert "验证码已发送" in await browser.say(PHONE)
        assert "/secure/password" in await browser.say(await sms_code(browser.http, PHONE))
        mark = len(browser.seen)
        await browser.use_password_page(PASSWORD, "注册完成")
        await browser.wait_for("注册成功", since=mark)

        # Every worker took part in this one conversation.
        workers = {bot.url for bot in cluster.bots}
        chat = [upstream for path, upstream in cluster.proxy.log if path.startswith(("/chat", "/secure"))]
        assert set(chat) == workers, cluster.proxy.served

        # A file uploaded through the proxy (one worker) is served by each worker.
        scan = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
        uploaded = await browser.http.post(
            "/chat/api/upload",
            data={"client_id": "upload0001"},
            files={"file": ("营业执照.png", scan, "image/png")},
        )
        assert uploaded.status_code == 200, uploaded.text
        receiver = cluster.proxy.log[-1][1]
        media_id = hashlib.sha256(scan).hexdigest()
        cookie = browser.http.cookies[COOKIE]
        async with httpx.AsyncClient(timeout=10, cookies={COOKIE: cookie}) as direct:
            for worker in cluster.bots:
                got = await direct.get(f"{worker.url}/chat/api/media/{media_id}")
                assert got.status_code == 200, (worker.name, receiver, got.text)
                assert got.content == scan
        # Nothing of it under any worker's data directory: it is in the shared database.
        for index in range(1, 4):
            media = cluster.workdir / f"worker-{index}" / "media"
            assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))
    finally:
        await browser.aclose()
