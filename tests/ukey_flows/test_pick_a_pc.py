"""Several of the user's paired PCs report the seal's UKey: the chat asks which PC to use,
listing them by their names, and the job runs there and nowhere else (zh and en)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.conftest import BridgeSide, short_sleep
from tests.ukey_flows.world import joined
from ukey_bridge.client import BridgeClient
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.jobs import JobRunner
from ukey_bridge.pairing import pair

PIN = "12345678"
SERIAL = "FAKEKEY0000021"
WORDS = {
    "zh": {
        "start": "改ukey密码",
        "ask": "有 2 台电脑都插着这枚印章的 UKey",
        "any": "任意一台",
        "done": "UKey 密码已修改",
    },
    "en": {
        "start": "change my pin",
        "ask": "2 PCs have this seal's UKey",
        "any": "Any of them",
        "done": "The UKey PIN is changed",
    },
}


def _key() -> FakeBackend:
    return FakeBackend([FakeToken(SERIAL, "Seal", user_pin=PIN, so_pin="SO-1")])


@contextlib.asynccontextmanager
async def _pc(side: BridgeSide, account_id: str, name: str, backend: FakeBackend) -> AsyncIterator[None]:
    """A paired PC online that reports the seal's UKey."""
    code = await side.hub.create_pairing_code(account_id)
    credential = await pair(side.url, code.code, device_name=name)
    clock = side.world.service.clock

    async def reports() -> list[str]:
        return [SERIAL]

    client = BridgeClient(
        credential,
        JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "24681357"])),
        sleep=short_sleep,
        clock=lambda: clock.now().timestamp(),
        token_serials=reports,
        heartbeat_seconds=0.05,
    )
    task = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_the_user_picks_the_pc_by_its_name_and_the_job_runs_only_there(
    bridge_side: BridgeSide, lang: str
) -> None:
    world, words = bridge_side.world, WORDS[lang]
    station = FakeBackend([FakeToken(SERIAL, "", user_pin="", so_pin="", initialised=False)])
    world.install_station(lambda: station)
    applicant = await world.applicant(lang=lang)
    await world.active_seal(applicant)
    office, home = _key(), _key()
    async with (
        _pc(bridge_side, applicant.account_id, "办公室电脑", office),
        _pc(bridge_side, applicant.account_id, "家里电脑", home),
    ):
        await asyncio.sleep(0.3)  # both have reported the UKey
        asked = joined(await world.chat.say(words["start"]))
        assert words["ask"] in asked
        labels = [o.label for o in world.chat.options()]
        assert {"办公室电脑", "家里电脑", words["any"]} <= set(labels)
        before = len(world.chat.transcript())
        await world.chat.tap("家里电脑")
        said = await bridge_side.until(words["done"], since=before)
    assert "家里电脑" in said, "the job is said to go to the PC the user picked"
    assert home.tokens[SERIAL].user_pin == "24681357"
    assert office.tokens[SERIAL].user_pin == PIN, "the other PC did nothing"


async def test_with_one_pc_reporting_the_key_nothing_is_asked(bridge_side: BridgeSide) -> None:
    world, words = bridge_side.world, WORDS["zh"]
    station = FakeBackend([FakeToken(SERIAL, "", user_pin="", so_pin="", initialised=False)])
    world.install_station(lambda: station)
    applicant = await world.applicant()
    await world.active_seal(applicant)
    office = _key()
    async with _pc(bridge_side, applicant.account_id, "办公室电脑", office):
        await asyncio.sleep(0.3)
        asked = joined(await world.chat.say(words["start"]))
        assert words["ask"] not in asked
        said = await bridge_side.until(words["done"])
    assert "办公室电脑" in said
    assert office.tokens[SERIAL].user_pin == "24681357"
