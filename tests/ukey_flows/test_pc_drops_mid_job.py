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
