"""Every console POST needs the session's CSRF token and the role of the action."""

from __future__ import annotations

from typing import Any

import httpx

from seal_platform.services import PlatformServices
from tests.console.conftest import StaffFactory
from tests.console.support import audit_entries


async def _status(api: httpx.AsyncClient, order: dict[str, object]) -> str:
    account = order["_account"]
    response = await api.get(f"/v1/orders/{order['id']}", headers=account.headers)  # type: ignore[attr-defined]
    return str(response.json()["status"])


async def _audit_count(services: PlatformServices) -> int:
    """Audit entries about orders (creating the test's staff members is audited too)."""
    return len(await audit_entries(services, object_type="order"))


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    order: dict[str, Any],
    api: httpx.AsyncClient,
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    reviewer = await console_for("csrf.reviewer", ["reviewer"])

    response = await reviewer.post(f"/orders/{order['id']}/approve", csrf=False)

    assert response.status_code == 403
    assert "页面已过期" in response.text
    assert await _status(api, order) == "under_review"
    assert await _audit_count(platform_services) == 0


async def test_the_token_of_another_session_is_refused(
    order: dict[str, Any],
    api: httpx.AsyncClient,
    console_for: StaffFactory,
) -> None:
    victim = await console_for("victim", ["reviewer"])
    attacker = await console_for("attacker", ["reviewer"])
    await attacker.get("/review")
    await victim.get("/review")
    victim.csrf_token = attacker.csrf_token

    response = await victim.post(f"/orders/{order['id']}/approve")

    assert response.status_code == 403
    assert await _status(api, order) == "under_review"


async def test_a_shipper_cannot_approve_an_order(
    order: dict[str, Any],
    api: httpx.AsyncClient,
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
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
    order: dict[str, Any],
    console_for: StaffFactory,
) -> None:
    shipper = await console_for("nosy.shipper", ["shipper"])
    document_id = order["documents"]["business_licence"]
    assert (await shipper.get(f"/documents/{document_id}")).status_code == 403
