"""Two hubs (two workers) on one database and one event bus: a job is offered once, even when
both hold a PC of the account, and a lost bus notification costs one sweep, nothing more."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from bot.bridge.hub import BridgeHub
from bot.bridge.models import BridgeJob
from bot.bridge.ports import UpdateKind
from bot.bridge.router import bridge_router
from bot.db import Database
from dbkit.bus import EventBus, InProcessBus
from tests.bridge_hub.conftest import CAIssuer, Clock, FixedSoPins, Updates, free_port, make_db, running
from tests.ukey_bridge.support import ScriptedPrompt, SmallCA
from ukey_bridge.client import BridgeClient
from ukey_bridge.credential import DeviceCredential
from ukey_bridge.errors import CredentialRevoked
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.jobs import JobRunner
from ukey_bridge.pairing import pair
from ukey_bridge.pin_prompt import JobExplanation

ACCOUNT = "acct-workers"
SWEEP_NEVER = 3600.0  # a test calls ``sweep()`` itself


class HangingPrompt(ScriptedPrompt):
    """Nobody confirms at the PC: the job stays with the PC that got it."""

    async def confirm(self, explanation: JobExplanation) -> bool:
        self.confirmations.append(explanation)
        await asyncio.Event().wait()
        return False


@dataclass
class Worker:
    hub: BridgeHub
    url: str
    updates: Updates


@contextlib.asynccontextmanager
async def worker(db: Database, bus: EventBus | None, clock: Clock) -> AsyncIterator[Worker]:
    updates = Updates()
    hub = BridgeHub(
        db,
        issuer=CAIssuer(SmallCA()),
        so_pins=FixedSoPins(),
        on_job_update=updates,
        clock=clock,
        bus=bus,
        sweep_seconds=SWEEP_NEVER,
    )
    app = FastAPI()
    app.include_router(bridge_router(hub))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    await hub.start()
    try:
        yield Worker(hub, f"http://127.0.0.1:{port}", updates)
    finally:
        await hub.stop()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def no_wait(_delay: float) -> None:
    await asyncio.sleep(0.05)


async def paired(via: Worker, name: str) -> DeviceCredential:
    code = await via.hub.create_pairing_code(ACCOUNT, conversation_ref="c")
    return await pair(via.url, code.code, device_name=name)


def key() -> FakeBackend:
    return FakeBackend([FakeToken("UKW1", "Seal", user_pin="135790", so_pin="SO-1")])


async def test_two_workers_each_holding_a_pc_of_the_account_offer_a_job_once(tmp_path: Path) -> None:
    db = await make_db(tmp_path / "bot.db")
    bus = InProcessBus()
    await bus.start()
    clock = Clock()
    try:
        # C (no PC, its notification lost) commits the job; A and B both find it pending at once
        async with worker(db, bus, clock) as a, worker(db, bus, clock) as b, worker(db, None, clock) as c:
            on_a = BridgeClient(await paired(a, "PC on A"), JobRunner(key, HangingPrompt()), sleep=no_wait)
            on_b = BridgeClient(await paired(b, "PC on B"), JobRunner(key, HangingPrompt()), sleep=no_wait)
            async with running(on_a), running(on_b):
                assert a.hub.connected_here() == 1
                assert b.hub.connected_here() == 1
                job_id = await c.hub.submit_job(ACCOUNT, "unlock", {"key_serial": "UKW1"}, "c")
                for _ in range(3):
                    await asyncio.gather(a.hub.sweep(), b.hub.sweep())
                await asyncio.sleep(0.3)
            async with db.session() as session:
                job = await session.get(BridgeJob, job_id)
            assert job is not None
            started = [u for u in a.updates.seen + b.updates.seen if u.kind is UpdateKind.JOB_STARTED]
            assert job.status == "sent"
            assert job.attempt == 1, "the job was offered more than once"
            assert [u.job_id for u in started] == [job_id]
    finally:
        await bus.close()
        await db.dispose()


async def test_a_job_whose_bus_notification_was_lost_is_offered_on_the_next_sweep(tmp_path: Path) -> None:
    db = await make_db(tmp_path / "bot.db")
    bus = InProcessBus()
    await bus.start()
    clock = Clock()
    try:
        # A publishes nothing (its notification is lost); B listens in vain
        async with worker(db, None, clock) as a, worker(db, bus, clock) as b:
            pc = BridgeClient(await paired(b, "PC on B"), JobRunner(key, HangingPrompt()), sleep=no_wait)
            async with running(pc):
                assert await a.hub.is_online(ACCOUNT), "A sees the PC connected to B"
                job_id = await a.hub.submit_job(ACCOUNT, "unlock", {"key_serial": "UKW1"}, "c")
                await asyncio.sleep(0.5)
                assert (await a.hub.get_job(ACCOUNT, job_id)).status == "pending"
                await b.hub.sweep()
                started = await b.updates.wait_for(UpdateKind.JOB_STARTED, job_id)
            assert started.device_name == "PC on B"
            assert (await a.hub.get_job(ACCOUNT, job_id)).status == "sent"
    finally:
        await bus.close()
        await db.dispose()


async def test_a_pc_revoked_on_one_worker_is_disconnected_by_the_worker_holding_it(tmp_path: Path) -> None:
    db = await make_db(tmp_path / "bot.db")
    bus = InProcessBus()
    await bus.start()
    clock = Clock()
    try:
        async with worker(db, bus, clock) as a, worker(db, bus, clock) as b:
            credential = await paired(b, "PC on B")
            pc = BridgeClient(credential, JobRunner(key, HangingPrompt()), sleep=no_wait)
            task = asyncio.create_task(pc.run_forever())
            await asyncio.wait_for(pc.connected.wait(), 10)
            assert b.hub.connected_here() == 1
            assert await a.hub.revoke_device(ACCOUNT, credential.device_id)
            # B closes the socket at once; the PC reconnects and is told it was unpaired
            with pytest.raises(CredentialRevoked):
                await asyncio.wait_for(task, 10)
            assert b.hub.connected_here() == 0
            assert not await a.hub.is_online(ACCOUNT)
            assert not await b.hub.is_online(ACCOUNT)
    finally:
        await bus.close()
        await db.dispose()
