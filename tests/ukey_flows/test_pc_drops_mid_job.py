"""A PC that drops in the middle of a UKey job: the chat says so at once and offers 重试."""

from __future__ import annotations

import asyncio

from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.conftest import BridgeSide
from tests.ukey_flows.world import joined
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.pin_prompt import JobExplanation


class WalksAway(ScriptedPrompt):
    """Nobody confirms at the PC; then the PC is switched off."""

    async def confirm(self, explanation: JobExplanation) -> bool:
        self.confirmations.append(explanation)
        await asyncio.Event().wait()
        return False


async def test_the_chat_tells_the_drop_and_offers_retry(bridge_side: BridgeSide) -> None:
    backend = FakeBackend([FakeToken("FAKEKEY0000002", "", user_pin="", so_pin="", initialised=False)])
    bridge_side.world.install_station(lambda: backend)
    applicant = await bridge_side.world.applicant()
    await bridge_side.world.active_seal(applicant)
    assert "ukey-bridge pair" in joined(await bridge_side.world.chat.say("改ukey密码"))
    async with bridge_side.pc(lambda: backend, WalksAway()):
        await bridge_side.until("请在电脑上确认")
        before = len(bridge_side.world.chat.transcript())
    said = await bridge_side.until("连接中断", since=before)
    assert "UKey 没有受影响" in said
    assert "重试" in [o.label for o in bridge_side.last_options()]


async def test_giving_up_a_paid_unlock_cancels_it_with_a_refund_and_frees_the_seal(
    bridge_side: BridgeSide,
) -> None:
    world = bridge_side.world
    backend = FakeBackend([FakeToken("FAKEKEY0000003", "", user_pin="", so_pin="", initialised=False)])
    world.install_station(lambda: backend)
    applicant = await world.applicant()
    seal = await world.active_seal(applicant)
    await world.chat.say("unlock my key")
    await world.chat.tap("确认办理")
    unlock = await world.order_of_seal(applicant, str(seal["id"]), "unlock")
    await world.pay(applicant, unlock["id"])
    await bridge_side.until("ukey-bridge pair")
    async with bridge_side.pc(lambda: backend, WalksAway()):
        await bridge_side.until("请在电脑上确认")
    await bridge_side.until("连接中断")
    give_up = next(o for o in bridge_side.last_options() if o.label == "放弃办理")
    said = joined(await world.chat.tap(give_up.label, token=give_up.token))
    assert "订单已取消，款项会原路退回" in said
    order = (await world.api.get(f"/v1/orders/{unlock['id']}", headers=applicant.headers)).json()
    assert order["status"] == "cancelled"
    assert order["result"]["refund_required"] is True
    # the seal is free: a cancellation can be started now
    freed = await world.api.post(
        "/v1/orders", json={"type": "cancellation", "seal_id": seal["id"]}, headers=applicant.headers
    )
    assert freed.status_code == 201, freed.text
