"""Wrong PIN and lock-out seen from the chat, on the fake token backend (SoftHSM2 never locks)."""

from __future__ import annotations

from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.conftest import BridgeSide
from tests.ukey_flows.world import joined
from ukey_bridge.fake_backend import FakeBackend, FakeToken

PIN = "12345678"  # the initial PIN production sets


async def start_pin_change(side: BridgeSide) -> tuple[str, FakeBackend]:
    """A seal produced at the station on a (fake) blank key that allows three wrong PINs, which
    the applicant's PC then holds."""
    backend = FakeBackend(
        [FakeToken("FAKEKEY0000001", "", user_pin="", so_pin="", max_tries=3, initialised=False)]
    )
    side.world.install_station(lambda: backend)
    applicant = await side.world.applicant()
    seal = await side.world.active_seal(applicant)
    assert seal["key_serial"] == "FAKEKEY0000001"
    asked = joined(await side.world.chat.say("改ukey密码"))
    assert "ukey-bridge pair" in asked
    return str(seal["id"]), backend


async def test_wrong_pin_on_the_pc_is_told_in_chat_with_the_tries_left(bridge_side: BridgeSide) -> None:
    _seal_id, backend = await start_pin_change(bridge_side)
    prompt = ScriptedPrompt(pins=["000000"])
    async with bridge_side.pc(lambda: backend, prompt):
        said = await bridge_side.until("还可以再试 2 次")
    assert "已配对成功" in said
    assert "在线" in said
    assert "请在电脑上输入 UKey 密码" in said
    assert "UKey 密码只在电脑上" in said
    # a PIN typed into the chat by mistake is not taken, and the user is warned
    warned = joined(await bridge_side.world.chat.say(PIN))
    assert "请不要在聊天里发送 UKey 密码" in warned
    assert next(o.label for o in bridge_side.world.chat.options()) == "重试"


async def test_locked_pin_offers_an_unlock(bridge_side: BridgeSide) -> None:
    seal_id, backend = await start_pin_change(bridge_side)
    backend.tokens[next(iter(backend.tokens))].user_failures = 2  # one try left before this job
    prompt = ScriptedPrompt(pins=["000000"])
    async with bridge_side.pc(lambda: backend, prompt):
        said = await bridge_side.until("已被锁定")
    assert "UKey 解锁" in said
    tokens = [o.token for o in bridge_side.last_options()]
    assert f"@go:unlock:{seal_id}" in tokens


async def test_pin_change_succeeds_after_a_retry(bridge_side: BridgeSide) -> None:
    _seal_id, backend = await start_pin_change(bridge_side)
    prompt = ScriptedPrompt(pins=["000000", PIN, "13579246"])
    async with bridge_side.pc(lambda: backend, prompt):
        await bridge_side.until("还可以再试 2 次")
        before = len(bridge_side.world.chat.transcript())
        retry = next(o for o in bridge_side.last_options() if o.label == "重试")
        await bridge_side.world.chat.tap(retry.label, token=retry.token)
        said = await bridge_side.until("UKey 密码已修改", since=before)
    assert "已重新发送" in said
    assert backend.tokens[next(iter(backend.tokens))].user_pin == "13579246"
