"""Wrong PIN and lock-out seen from the chat, on the fake token backend (SoftHSM2 never locks)."""

from __future__ import annotations

from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.conftest import BridgeSide
from tests.ukey_flows.world import joined
from ukey_bridge.fake_backend import FakeBackend, FakeToken

PIN = "246810"


async def start_pin_change(side: BridgeSide) -> tuple[str, FakeBackend]:
    applicant = await side.world.applicant()
    seal = await side.world.active_seal(applicant)
    key = FakeToken(str(seal["key_serial"]), "Seal key", user_pin=PIN, so_pin="SO-1", max_tries=3)
    asked = joined(await side.world.chat.say("改ukey密码"))
    assert "ukey-bridge pair" in asked
    return str(seal["id"]), FakeBackend([key])


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
