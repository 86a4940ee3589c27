"""注销 waits for a paid order on the seal: the chat names the order instead of cancelling."""

from __future__ import annotations

from tests.ukey_flows.conftest import BridgeSide
from tests.ukey_flows.world import ADDRESS, joined


async def test_cancellation_names_the_paid_reissue_in_progress_and_keeps_the_seal(
    bridge_side: BridgeSide,
) -> None:
    world = bridge_side.world
    applicant = await world.applicant()
    seal = await world.active_seal(applicant)
    chat = world.chat
    await chat.say("注销印章")
    await chat.tap("确定注销")
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
    said = joined(await chat.say(world.service.sms_code(applicant.phone, "cancel_seal")))
    assert "还有一笔「印章补办」订单正在办理" in said
    assert "退款" in said
    assert (await world.seal(applicant, str(seal["id"])))["status"] == "active"
