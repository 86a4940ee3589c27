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


async def test_unpairing_asks_first_naming_the_pc_and_no_keeps_it(world: SealWorld) -> None:
    applicant = await world.applicant()
    hub = await paired_pc(world, "财务室电脑", "zh")
    chat = world.chat
    await chat.say("UKey 助手（电脑）")
    asked = await chat.tap("解除配对：财务室电脑")
    assert asked[-1] == (
        "（第 2/2 步） 确定要解除电脑「财务室电脑」的配对吗？"
        "解除后这台电脑不能再接收 UKey 任务（续期、变更、解锁等），要再用需重新配对。"
    )
    assert [o.label for o in chat.options()][:2] == ["确定解除", "不解除"]
    assert "保持配对" in joined(await chat.tap("不解除"))
    assert [d.name for d in await hub.list_devices(applicant.account_id)] == ["财务室电脑"]
    await chat.say("UKey 助手（电脑）")
    await chat.tap("解除配对：财务室电脑")
    assert "已解除配对" in joined(await chat.tap("确定解除"))
    assert await hub.list_devices(applicant.account_id) == []


async def test_unpairing_asks_first_in_english(world: SealWorld) -> None:
    applicant = await world.applicant(lang="en")
    hub = await paired_pc(world, "Front desk PC", "en")
    chat = world.chat
    await chat.say("UKey helper (PCs)")
    asked = await chat.tap("Unpair: Front desk PC")
    assert asked[-1] == (
        '(Step 2/2) Unpair the computer "Front desk PC"? It will no longer receive UKey tasks '
        "(renewal, changes, unlocking); to use it again you must pair it again."
    )
    await chat.tap("Keep it paired")
    assert len(await hub.list_devices(applicant.account_id)) == 1
