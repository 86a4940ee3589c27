"""The order state machine: forbidden moves, lost races, terminal states, staff roles,
and idempotent order creation."""

from __future__ import annotations

import httpx
import pytest

from seal_platform.errors import RuleViolation
from seal_platform.orders import TRANSITIONS, Order, OrderStatus, OrderType, transition
from seal_platform.services import PlatformServices
from seal_platform.staff import StaffRole
from tests.platform.conftest import ON_BOTH_DATABASES, MakeAccount
from tests.platform.test_orders_support import (
    ADDRESS,
    COMPANY,
    Staff,
    admin,
    create_order,
    enterprise_documents,
    make_staff,
    new_enterprise_order,
    paid_enterprise_order,
    staff_post,
)

pytestmark = ON_BOTH_DATABASES

__all__ = ["admin"]
TERMINAL = {OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}


@pytest.mark.parametrize("order_type", list(OrderType))
def test_every_order_type_can_reach_completion_from_draft_and_terminal_states_are_final(
    order_type: OrderType,
) -> None:
    table = TRANSITIONS[order_type]
    reachable = {OrderStatus.DRAFT}
    frontier = [OrderStatus.DRAFT]
    while frontier:
        here = frontier.pop()
        for source, target in table:
            if source == here and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert OrderStatus.COMPLETED in reachable
    assert OrderStatus.CANCELLED in reachable
    assert not [pair for pair in table if pair[0] in TERMINAL]


async def test_shipping_an_unapproved_order_is_an_invalid_transition(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    response = await staff_post(api, admin, f"/orders/{order['id']}/ship", {"waybill": "SF1234567890123"})
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "invalid_transition"
    assert problem["details"]["from"] == "under_review"
    assert problem["details"]["to"] == "shipped"


async def test_producing_before_approval_issues_nothing(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    response = await staff_post(api, admin, f"/orders/{order['id']}/produce")
    assert response.status_code == 409
    assert response.json()["details"] == {
        "order_id": order["id"],
        "from": "under_review",
        "to": "in_production",
    }
    assert (await api.get("/v1/seals", headers=account.headers)).json() == []


async def test_approving_a_draft_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    order = await new_enterprise_order(api, account)
    response = await staff_post(api, admin, f"/orders/{order['id']}/approve")
    assert response.status_code == 409
    assert response.json()["details"]["from"] == "draft"


async def test_a_cancelled_order_cannot_be_submitted(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    order = await new_enterprise_order(api, account)
    await api.post(f"/v1/orders/{order['id']}/cancel", headers=account.headers)
    response = await api.post(f"/v1/orders/{order['id']}/submit", headers=account.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


async def test_a_paid_order_cannot_be_cancelled_by_the_applicant(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    response = await api.post(f"/v1/orders/{order['id']}/cancel", headers=account.headers)
    assert response.status_code == 409
    assert response.json()["details"]["from"] == "under_review"


async def test_the_loser_of_a_race_gets_invalid_transition_with_the_winners_state(
    api: httpx.AsyncClient, make_account: MakeAccount, platform_services: PlatformServices
) -> None:
    account = await make_account(realname=True)
    order = await new_enterprise_order(api, account)
    async with platform_services.db.session() as session:
        stale = await session.get(Order, order["id"])
        assert stale is not None
        session.expunge(stale)
    # The winner moves the order first ...
    await api.post(f"/v1/orders/{order['id']}/cancel", headers=account.headers)
    # ... the loser still believes it is a draft; its conditional UPDATE matches no row.
    async with platform_services.db.session() as session:
        loser = await session.merge(stale, load=False)
        with pytest.raises(RuleViolation) as refused:
            await transition(
                session, loser, OrderStatus.AWAITING_PAYMENT, now=platform_services.clock.now(), actor="test"
            )
    assert refused.value.code == "invalid_transition"
    assert refused.value.details["from"] == "cancelled"
    assert (await api.get(f"/v1/orders/{order['id']}", headers=account.headers)).json()[
        "status"
    ] == "cancelled"


async def test_staff_actions_need_their_role(
    api: httpx.AsyncClient, make_account: MakeAccount, platform_services: PlatformServices
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    reviewer = await make_staff(api, platform_services, "reviewer1", [StaffRole.REVIEWER])
    producer = await make_staff(api, platform_services, "producer1", [StaffRole.PRODUCER])
    refused = await staff_post(api, producer, f"/orders/{order['id']}/approve")
    assert refused.status_code == 403
    assert refused.json()["code"] == "staff_role_required"
    assert (await staff_post(api, reviewer, f"/orders/{order['id']}/approve")).status_code == 200
    assert (await staff_post(api, reviewer, f"/orders/{order['id']}/produce")).status_code == 403
    assert (await staff_post(api, producer, f"/orders/{order['id']}/produce")).status_code == 200


async def test_staff_endpoints_refuse_missing_and_forged_tokens(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/staff/orders")).status_code == 401
    forged = await api.get("/v1/staff/orders", headers={"X-Staff-Token": "not-a-token"})
    assert forged.status_code == 401


async def test_every_staff_action_is_audited_with_before_and_after(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    await staff_post(api, admin, f"/orders/{order['id']}/reject", {"reason": "公章不清晰，请重新盖章"})
    entries = (
        await api.get("/v1/staff/audit", params={"object_id": order["id"]}, headers=admin.headers)
    ).json()
    (entry,) = entries
    assert entry["actor"] == "staff:admin"
    assert entry["action"] == "reject"
    assert entry["before"]["status"] == "under_review"
    assert entry["after"]["status"] == "rejected"
    assert entry["after"]["reject_reason"] == "公章不清晰，请重新盖章"


async def test_invalid_waybill_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    for step in ("approve", "produce"):
        await staff_post(api, admin, f"/orders/{order['id']}/{step}")
    response = await staff_post(api, admin, f"/orders/{order['id']}/ship", {"waybill": "SF12345"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_waybill"


# -- idempotent creation -------------------------------------------------------------------


async def test_same_idempotency_key_and_body_return_the_same_order(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    body = {"type": "enterprise_seal", "company": COMPANY, "years": 1, "mailing_address": ADDRESS}
    headers = {**account.headers, "Idempotency-Key": "order-create-1"}
    first = await api.post("/v1/orders", json=body, headers=headers)
    second = await api.post("/v1/orders", json=body, headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert len((await api.get("/v1/orders", headers=account.headers)).json()) == 1


async def test_same_idempotency_key_with_another_body_is_a_conflict(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    documents = await enterprise_documents(api, account)
    body = {"type": "enterprise_seal", "company": COMPANY, "years": 1, "documents": documents}
    await create_order(api, account, body, key="order-create-2")
    response = await api.post(
        "/v1/orders",
        json={**body, "years": 2},
        headers={**account.headers, "Idempotency-Key": "order-create-2"},
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


async def test_idempotency_keys_are_per_account(api: httpx.AsyncClient, make_account: MakeAccount) -> None:
    first, second = await make_account(realname=True), await make_account(realname=True)
    body = {"type": "enterprise_seal", "company": COMPANY, "years": 1}
    one = await create_order(api, first, body, key="shared-key")
    two = await create_order(api, second, body, key="shared-key")
    assert one["id"] != two["id"]


async def test_without_a_key_each_request_creates_an_order(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    body = {"type": "enterprise_seal", "company": COMPANY, "years": 1}
    one = await create_order(api, account, body)
    two = await create_order(api, account, body)
    assert one["id"] != two["id"]
