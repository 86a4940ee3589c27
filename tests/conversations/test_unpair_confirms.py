"""Unpairing a UKey helper PC cannot be undone, so it asks first and names the PC and what
stops working (issue 13, 2); saying no keeps the PC paired."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.bridge.hub import BridgeHub
from tests.conversations.conftest import Service
from tests.ukey_flows.world import SealWorld, joined, pairing_code


@pytest.fixture
async def world(service: Service) -> AsyncIterator[SealWorld]:
    made = SealWorld(service)
    yield made
    await made.close()


async def paired_pc(world: SealWorld, name: str, lang: str) -> BridgeHub:
    hub = world.service.container.bridge
    assert isinstance(hub, BridgeHub)
    code = pairing_code(joined(await world.chat.say("pair my pc" if lang == "en" else "配对电脑")))
    await hub.redeem_pairing_code(code, name, "127.0.0.1")
    return hub


ZH = {
    "lang": "zh",
    "pc": "财务室电脑",
    "menu": "UKey 助手（电脑）",
    "revoke": "解除配对：财务室电脑",
    "asked": "（第 2/2 步） 确定要解除电脑「财务室电脑」的配对吗？"
    "解除后这台电脑不能再接收 UKey 任务（续期、变更、解锁等），要再用需重新配对。",
    "yes": "确定解除",
    "no": "不解除",
    "kept": "好的，这台电脑保持配对。",
    "revoked": "已解除配对，这台电脑将不能再接收 UKey 任务。",
}
EN = {
    "lang": "en",
    "pc": "Front desk PC",
    "menu": "UKey helper (PCs)",
    "revoke": "Unpair: Front desk PC",
    "asked": '(Step 2/2) Unpair the computer "Front desk PC"? It will no longer receive UKey tasks '
    "(renewal, changes, unlocking); to use it again you must pair it again.",
    "yes": "Yes, unpair",
    "no": "Keep it paired",
    "kept": "OK, the computer stays paired.",
    "revoked": "Unpaired: that PC can no longer receive UKey jobs.",
}


@pytest.mark.parametrize("words", [ZH, EN], ids=["zh", "en"])
async def test_unpairing_asks_first_naming_the_pc_and_no_keeps_it(
    world: SealWorld, words: dict[str, str]
) -> None:
    applicant = await world.applicant(lang=words["lang"])
    hub = await paired_pc(world, words["pc"], words["lang"])
    chat = world.chat
    await chat.say(words["menu"])
    assert (await chat.tap(words["revoke"]))[-1] == words["asked"]
    assert [o.label for o in chat.options()][:2] == [words["yes"], words["no"]]
    assert words["kept"] in joined(await chat.tap(words["no"]))
    assert [d.name for d in await hub.list_devices(applicant.account_id)] == [words["pc"]]
    await chat.say(words["menu"])
    await chat.tap(words["revoke"])
    assert words["revoked"] in joined(await chat.tap(words["yes"]))
    assert await hub.list_devices(applicant.account_id) == []
