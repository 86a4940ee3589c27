"""The multi-host topology of docs/deploy.md as plain processes on this machine.

The platform (``sealbot-platform serve``, remote mode) on its own PostgreSQL database, N bot
workers (``sealbot serve``, each with its own port and data directory, as the systemd unit
``sealbot@.service`` starts them) on one shared PostgreSQL database, and the round-robin proxy
in front. The databases are created fresh on the server of ``admin_url`` and dropped at the
end. Used by ``tests/deploy/test_cluster.py`` and ``python -m bench.cluster``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.proxy import RoundRobinProxy, Upstream

SECRET_KEY = "cluster-shared-secret-key-0123456789"
SERVICE_KEY = "cluster-service-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def console_script(name: str) -> str:
    """The entry point installed beside this interpreter (``.venv/bin/sealbot``)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: install the package (pip install -e .)")
    return str(path)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "SEALBOT_", "PROMETHEUS_"))}


@dataclass
class Process:
    name: str
    url: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster:
    workdir: Path
    admin_url: str
    workers: int = 3
    proxy: RoundRobinProxy = field(init=False)
    platform: Process = field(init=False)
    bots: list[Process] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)

    def database_url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    async def _create_databases(self) -> tuple[str, str]:
        tag = uuid.uuid4().hex[:10]
        names = [f"sealbot_cluster_bot_{tag}", f"sealbot_cluster_platform_{tag}"]
        admin = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                for name in names:
                    await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                    self.databases.append(name)
        finally:
            await admin.dispose()
        return self.database_url(names[0]), self.database_url(names[1])

    def bot_env(self, index: int, port: int, bot_db: str) -> dict[str, str]:
        """The settings docs/deploy.md lists for a bot worker; only port and data dir differ."""
        env = _clean_env()
        env.update(
            SEALBOT_DATABASE_URL=bot_db,
            SEALBOT_PLATFORM_MODE="remote",
            SEALBOT_PLATFORM_URL=self.platform.url,
            SEALBOT_PLATFORM_SERVICE_KEY=SERVICE_KEY,
            SEALBOT_SECRET_KEY=SECRET_KEY,
            SEALBOT_PUBLIC_BASE_URL=self.proxy.url,
            SEALBOT_HOST="127.0.0.1",
            SEALBOT_PORT=str(port),
            SEALBOT_DATA_DIR=str(self.workdir / f"worker-{index}"),
            SEALBOT_LOG_LEVEL="WARNING",
        )
        return env

    def _spawn(self, name: str, command: list[str], env: dict[str, str], url: str) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(  # noqa: S603 - our own entry points, fixed arguments
                command, env=env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT
            )
        return Process(name, url, popen, log)

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        bot_db, platform_db = await self._create_databases()
        self.proxy = RoundRobinProxy(workers=[])
        await self.proxy.start()
        port = free_port()
        env = _clean_env()
        env.update(
            PLATFORM_DATABASE_URL=platform_db,
            PLATFORM_DATA_DIR=str(self.workdir / "platform"),
            PLATFORM_SERVICE_KEY=SERVICE_KEY,
            PLATFORM_SECRET_KEY=SECRET_KEY + "-platform",
            PLATFORM_PUBLIC_BASE_URL=self.proxy.url + "/platform",
        )
        self.platform = self._spawn(
            "platform",
            [console_script("sealbot-platform"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env,
            f"http://127.0.0.1:{port}",
        )
        self.proxy.platform = Upstream("127.0.0.1", port)
        await self._wait_ready(self.platform, "/dev/sms")
        # All workers at once, as systemd or compose starts them: they migrate the same
        # database at the same moment.
        for index in range(1, self.workers + 1):
            self.bots.append(self.start_worker(index, bot_db))
        await asyncio.gather(*(self._wait_ready(bot, "/healthz") for bot in self.bots))
        self.proxy.set_workers([Upstream("127.0.0.1", int(bot.url.rsplit(":", 1)[1])) for bot in self.bots])

    def start_worker(self, index: int, bot_db: str) -> Process:
        port = free_port()
        return self._spawn(
            f"worker-{index}",
            [console_script("sealbot"), "serve"],
            self.bot_env(index, port, bot_db),
            f"http://127.0.0.1:{port}",
        )

    async def _wait_ready(self, process: Process, path: str, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if process.popen.poll() is not None:
                    raise RuntimeError(
                        f"{process.name} exited:\n{process.log.read_text(errors='replace')[-3000:]}"
                    )
                try:
                    if (await client.get(process.url + path)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{process.name} not ready in {within:.0f} s:\n{process.log.read_text()[-3000:]}")

    async def stop(self) -> None:
        for process in [*self.bots, getattr(self, "platform", None)]:
            if process is not None and process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in [*self.bots, getattr(self, "platform", None)]:
            if process is None:
                continue
            try:
                await asyncio.to_thread(process.popen.wait, 20)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                await asyncio.to_thread(process.popen.wait)
        if hasattr(self, "proxy"):
            await self.proxy.stop()
        if self.databases:
            admin = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
            try:
                async with admin.connect() as conn:
                    for name in self.databases:
                        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            finally:
                await admin.dispose()
