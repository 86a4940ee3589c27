"""Every console POST needs the session's CSRF token and the role of the action."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from seal_platform.services import PlatformServices
from seal_platform.staff_actions import AuditEntry
from tests.console.conftest import StaffFactory
from tests.console.support import order_under_review
from tests.platform.conftest import MakeAccount


async def _status(api: httpx.AsyncClient, order: dict[str, object]) -> str:
    account = order["_account"]
    response = await api.get(f"/v1/orders/{order['id']}", headers=account.headers)  # type: ignore[attr-defined]
    return str(response.json()["status"])


async def _audit_count(services: PlatformServices) -> int:
    """Audit entries about orders (creating the test's staff members is audited too)."""
    async with services.db.session() as session:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.object_type == "order")
        return int(await session.scalar(query) or 0)


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    order = await order_under_review(api, make_account)
    reviewer = await console_for("csrf.reviewer", ["reviewer"])

    response = await reviewer.post(f"/orders/{order['id']}/approve", csrf=False)

    assert response.status_code == 403
    assert "页面已过期" in response.text
    assert await _status(api, order) == "under_review"
    assert await _audit_count(platform_services) == 0


async def test_the_token_of_another_session_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, console_for: StaffFactory
) -> None:
    order = await order_under_review(api, make_account)
    victim = await console_for("victim", ["reviewer"])
    attacker = await console_for("attacker", ["reviewer"])
    await attacker.get("/review")
    await victim.get("/review")
    victim.csrf_token = attacker.csrf_token

    response = await victim.post(f"/orders/{order['id']}/approve")

    assert response.status_code == 403
    assert await _status(api, order) == "under_review"


async def test_a_shipper_cannot_approve_an_order(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    order = await order_under_review(api, make_account)
    shipper = await console_for("zhao.shipper", ["shipper"])

    response = await shipper.post(f"/orders/{order['id']}/approve")

    assert response.status_code == 403
    assert "无权" in response.text
    assert await _status(api, order) == "under_review"
    assert await _audit_count(platform_services) == 0


async def test_pages_of_other_roles_are_refused_and_left_out_of_the_menu(console_for: StaffFactory) -> None:
    shipper = await console_for("menu.shipper", ["shipper"])
    dashboard = await shipper.get("/")
    assert 'id="nav-shipping"' in dashboard.text
    assert 'id="nav-review"' not in dashboard.text
    assert 'id="nav-audit"' not in dashboard.text
    for path in ("/review", "/production", "/invoices", "/audit", "/users"):
        assert (await shipper.get(path)).status_code == 403, path
    assert (await shipper.get("/shipping")).status_code == 200


async def test_admin_may_do_every_role_s_work(console_for: StaffFactory) -> None:
    admin = await console_for("root", ["admin"])
    for path in ("/review", "/production", "/shipping", "/invoices", "/audit", "/users", "/orders"):
        assert (await admin.get(path)).status_code == 200, path


async def test_a_shipper_may_not_open_the_applicant_s_id_card_scans(
    api: httpx.AsyncClient, make_account: MakeAccount, console_for: StaffFactory
) -> None:
    order = await order_under_review(api, make_account)
    shipper = await console_for("nosy.shipper", ["shipper"])
    document_id = order["documents"]["business_licence"]
    assert (await shipper.get(f"/documents/{document_id}")).status_code == 403
