from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI

from bot.bridge.adapters import SoPinUnavailable
from bot.bridge.hub import BridgeHub
from bot.bridge.models import (
    BridgeDevice,
    BridgeJob,
    BridgePairFailure,
    BridgePairingCode,
    BridgePresence,
)
from bot.bridge.ports import IssuedCredential, JobUpdate, UpdateKind
from bot.bridge.router import bridge_router
from bot.db import Base, Database
from tests.fixtures.served import free_port, serve_in_loop
from tests.ukey_bridge.support import SO_PIN, SmallCA
from ukey_bridge.client import BridgeClient


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class CAIssuer:
    """The CertificateIssuer port backed by a small real CA."""

    ca: SmallCA
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def issue(self, account_id: str, order_id: str, csr_der: bytes) -> IssuedCredential:
        self.calls.append((account_id, order_id))
        issued = self.ca.issue_for_csr(csr_der)
        return IssuedCredential(issued.cert_der, issued.seseal_der, issued.chain_pem)


class FixedSoPins:
    """The issuer's SO PIN, or (``refusal`` set) the platform refusing to release it."""

    def __init__(self) -> None:
        self.refusal: str | None = None

    async def so_pin_for(self, account_id: str, key_serial: str, order_id: str) -> str:
        if self.refusal is not None:
            raise SoPinUnavailable(self.refusal)
        return SO_PIN


@dataclass
class Updates:
    seen: list[JobUpdate] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # the chat side failing once on this kind of update (to show the hub survives it)
    fail_once_on: UpdateKind | None = None

    async def __call__(self, update: JobUpdate) -> None:
        self.seen.append(update)
        self.changed.set()
        if update.kind is self.fail_once_on:
            self.fail_once_on = None
            raise RuntimeError("the conversation side failed on this update")

    async def wait_for(self, kind: UpdateKind, job_id: str | None = None) -> JobUpdate:
        async def find() -> JobUpdate:
            while True:
                for update in self.seen:
                    if update.kind is kind and (job_id is None or update.job_id == job_id):
                        return update
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(find(), 30)

    def kinds(self, job_id: str) -> list[UpdateKind]:
        return [u.kind for u in self.seen if u.job_id == job_id]


@dataclass
class Service:
    hub: BridgeHub
    url: str
    db: Database
    updates: Updates
    issuer: CAIssuer
    clock: Clock
    so_pins: FixedSoPins


async def make_db(path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    tables = [
        Base.metadata.tables[m.__tablename__]
        for m in (BridgePairingCode, BridgePairFailure, BridgeDevice, BridgeJob, BridgePresence)
    ]
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=tables))
    return db


@pytest.fixture
def ca() -> SmallCA:
    return SmallCA()


@pytest.fixture
async def service(tmp_path: Path, ca: SmallCA) -> AsyncIterator[Service]:
    db = await make_db(tmp_path / "bot.db")
    updates = Updates()
    issuer = CAIssuer(ca)
    clock = Clock()
    so_pins = FixedSoPins()
    hub = BridgeHub(db, issuer=issuer, so_pins=so_pins, on_job_update=updates, clock=clock)
    app = FastAPI()
    app.include_router(bridge_router(hub))
    port = free_port()
    try:
        async with serve_in_loop(app, port, lifespan="off") as base:
            yield Service(hub, base, db, updates, issuer, clock, so_pins)
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def running(client: BridgeClient) -> AsyncIterator[asyncio.Task[None]]:
    """The bridge program connected (and serving jobs) for the block."""
    task = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
