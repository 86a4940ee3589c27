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

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bench.topology import Cluster
from bot.channels.webchat.sessions import COOKIE
from tests.contract.postgres import PG_URL, require_postgres

pytestmark = pytest.mark.postgres

PHONE = "13800138471"
PASSWORD = "Xq7secretPass99"
LINK = re.compile(r"/secure/password\?t=[A-Za-z0-9_.%-]+")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SMS_ROW = re.compile(r"<tr><td>([^<]+)</td><td>[^<]*</td><td class=code>(\d{6})</td>")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    await require_postgres()
    topology = Cluster(tmp_path, PG_URL, workers=3)
    try:
        await topology.start()
        yield topology
    finally:
        await topology.stop()


class Browser:
    """One web-chat user behind the proxy, as the chat page's script talks to the service."""

    def __init__(self, base: str) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=20)
        self.count = 0

    async def say(self, text: str) -> None:
        self.count += 1
        sent = await self.http.post(
            "/chat/api/send", json={"client_id": f"client{self.count:04d}", "text": text}
        )
        assert sent.status_code == 200, sent.text

    async def texts(self) -> list[str]:
        got = await self.http.get("/chat/api/messages", params={"after": 0, "wait": 0})
        assert got.status_code == 200, got.text
        return [f"{m['text']} {m['url'] or ''}" for m in got.json()["messages"]]

    async def wait_for(self, expect: str) -> list[str]:
        for _ in range(200):
            got = await self.texts()
            if any(expect in text for text in got):
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"{expect!r} never came: {got}")


async def sms_code(web: httpx.AsyncClient, phone: str) -> str:
    page = await web.get("/platform/dev/sms")
    masked = phone[:3] + "****" + phone[-4:]
    for shown, code in SMS_ROW.findall(page.text):
        if shown == masked:
            return str(code)
    raise AssertionError(f"no code for {masked} on the SMS page")


async def test_three_workers_behind_a_proxy_serve_one_registration_and_share_files(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=5) as direct:
        for worker in cluster.bots:
            assert (await direct.get(worker.url + "/healthz")).status_code == 200, worker.name

    browser = Browser(cluster.proxy.url)
    try:
        assert (await browser.http.get("/chat")).status_code == 200
        await browser.say("注册")
        await browser.say(PHONE)
        await browser.wait_for("验证码已发送")
        await browser.say(await sms_code(browser.http, PHONE))
        url = LINK.search("\n".join(await browser.wait_for("/secure/password")))
        assert url is not None
        form = await browser.http.get(url.group(0))
        csrf = CSRF.search(form.text)
        assert csrf is not None
        done = await browser.http.post(
            url.group(0), data={"csrf": csrf.group(1), "password": PASSWORD, "confirm": PASSWORD}
        )
        assert "注册完成" in done.text
        await browser.wait_for("注册成功")

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
        await browser.http.aclose()
