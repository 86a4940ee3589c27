"""注销 waits for a paid order on the seal. While nothing is made for that order (a reissue not
yet produced) the chat offers to withdraw it with a refund, asks to confirm, withdraws it and
cancels the seal with the same code; once it is in production the chat only names it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.seals import ADDRESS
from tests.ukey_flows.conftest import BridgeSide
from tests.ukey_flows.world import Applicant, SealWorld, joined

WORDS = {
    "zh": {
        "cancel": "注销印章",
        "sure": "确定注销",
        "busy": "还有一笔「印章补办」订单",
        "offer": "取消补办并退款",
        "keep": "暂不注销",
        "kept": "订单和印章都保持不变",
        "confirm": "确认取消并退款",
        "asks": "将原路退回，取消后不能恢复",
        "withdrawn": "已取消",
        "done": "已注销",
        "wait": "请等它完成",
    },
    "en": {
        "cancel": "cancel my seal",
        "sure": "Yes, cancel it",
        "busy": '"seal reissue" order',
        "offer": "Cancel the reissue and refund",
        "keep": "Keep the seal",
        "kept": "the order and the seal stay as they are",
        "confirm": "Cancel it and refund",
        "asks": "this cannot be undone",
        "withdrawn": "is cancelled",
        "done": "Cancelled:",
        "wait": "Wait until it is finished",
    },
}


async def _paid_reissue_while_cancelling(
    world: SealWorld, lang: str
) -> tuple[Applicant, dict[str, Any], dict[str, Any]]:
    applicant = await world.applicant(lang=lang)
    seal = await world.active_seal(applicant)
    await world.chat.say(WORDS[lang]["cancel"])
    await world.chat.tap(WORDS[lang]["sure"])
    created = await world.api.post(
        "/v1/orders",
        json={"type": "reissue", "seal_id": seal["id"], "mailing_address": ADDRESS},
        headers=applicant.headers,
    )
    assert created.status_code == 201, created.text
    reissue = created.json()
    submitted = await world.api.post(f"/v1/orders/{reissue['id']}/submit", headers=applicant.headers)
    assert submitted.status_code == 200, submitted.text
    await world.pay(applicant, reissue["id"])
    return applicant, seal, reissue


async def _order(world: SealWorld, applicant: Applicant, order_id: str) -> dict[str, Any]:
    return dict((await world.api.get(f"/v1/orders/{order_id}", headers=applicant.headers)).json())


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_a_paid_reissue_not_yet_made_is_withdrawn_with_a_refund_after_confirming_then_the_seal_is_cancelled(
    bridge_side: BridgeSide, lang: str
) -> None:
    world, words = bridge_side.world, WORDS[lang]
    applicant, seal, reissue = await _paid_reissue_while_cancelling(world, lang)
    said = joined(await world.chat.say(world.service.sms_code(applicant.phone, "cancel_seal")))
    assert words["busy"] in said
    assert reissue["id"][:8].upper() in said
    assert words["offer"] in [o.label for o in world.chat.options()]
    asked = joined(await world.chat.tap(words["offer"]))
    assert words["asks"] in asked, "it asks before withdrawing"
    assert (await _order(world, applicant, reissue["id"]))["status"] == "paid", (
        "nothing happens before the yes"
    )
    done = joined(await world.chat.tap(words["confirm"]))
    assert words["withdrawn"] in done
    assert words["done"] in done
    withdrawn = await _order(world, applicant, reissue["id"])
    assert withdrawn["status"] == "cancelled"
    assert withdrawn["result"]["refund_required"] is True
    assert (await world.seal(applicant, str(seal["id"])))["status"] == "cancelled"
    # staff can no longer produce the withdrawn reissue
    produced = await world.staff_call(f"/orders/{reissue['id']}/produce")
    assert produced.status_code == 409, produced.text


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_keeping_the_reissue_leaves_order_and_seal_as_they_were(
    bridge_side: BridgeSide, lang: str
) -> None:
    world, words = bridge_side.world, WORDS[lang]
    applicant, seal, reissue = await _paid_reissue_while_cancelling(world, lang)
    await world.chat.say(world.service.sms_code(applicant.phone, "cancel_seal"))
    kept = joined(await world.chat.tap(words["keep"]))
    assert words["kept"] in kept
    assert (await _order(world, applicant, reissue["id"]))["status"] == "paid"
    assert (await world.seal(applicant, str(seal["id"])))["status"] == "active"


async def test_a_reissue_already_in_production_is_only_named_never_offered(bridge_side: BridgeSide) -> None:
    world, words = bridge_side.world, WORDS["zh"]
    applicant, seal, reissue = await _paid_reissue_while_cancelling(world, "zh")
    await world.staff(f"/orders/{reissue['id']}/produce")
    said = joined(await world.chat.say(world.service.sms_code(applicant.phone, "cancel_seal")))
    assert words["busy"] in said
    assert words["wait"] in said
    assert words["offer"] not in [o.label for o in world.chat.options()]
    assert (await world.seal(applicant, str(seal["id"])))["status"] == "active"
