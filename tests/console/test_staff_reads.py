"""Staff see personal values masked; a full value or a scan outside their queue's work needs a
reason; every read of an order's details, a scan or a revealed value is in the audit log."""

from __future__ import annotations

import html
from typing import Any

from seal_platform.services import PlatformServices
from tests.console.conftest import StaffFactory
from tests.console.support import audit_entries
from tests.platform.conftest import ADULT_ID_NUMBER
from tests.platform.test_orders_support import ADDRESS


async def test_a_scan_outside_the_staff_members_work_needs_a_reason_and_is_recorded(
    order: dict[str, Any],
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    licence = order["documents"]["business_licence"]
    support = await console_for("read.support", ["support"])

    asked = await support.get(f"/documents/{licence}")
    assert asked.status_code == 403
    assert "查看理由" in asked.text
    assert await audit_entries(platform_services, object_id=licence, action="preview_document") == []

    shown = await support.get(f"/documents/{licence}", reason="客户来电核对营业执照")
    assert shown.status_code == 200
    assert shown.content.startswith(b"\x89PNG")
    (entry,) = await audit_entries(platform_services, object_id=licence, action="preview_document")
    assert entry.actor == "staff:read.support"
    assert entry.after == {"kind": "business_licence", "reason": "客户来电核对营业执照"}


async def test_a_reviewer_reads_the_scans_of_an_order_under_review_for_that_review(
    order: dict[str, Any],
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    licence = order["documents"]["business_licence"]
    reviewer = await console_for("read.reviewer", ["reviewer"])
    assert (await reviewer.get(f"/documents/{licence}")).status_code == 200
    (entry,) = await audit_entries(platform_services, object_id=licence, action="preview_document")
    assert entry.after is not None
    assert entry.after["reason"] == f"审核订单 {order['id'][:8].upper()}"


async def test_the_order_page_masks_the_phone_and_a_reveal_needs_a_reason_and_is_audited(
    order: dict[str, Any],
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    support = await console_for("reveal.support", ["support"])
    page = await support.get(f"/orders/{order['id']}")
    assert page.status_code == 200
    assert ADDRESS["phone"] not in page.text
    assert "138****8000" in page.text
    assert ADULT_ID_NUMBER not in page.text
    assert len(await audit_entries(platform_services, object_id=order["id"], action="view_order")) == 1

    refused = await support.post(f"/orders/{order['id']}/reveal", {"field": "mailing_phone", "reason": ""})
    assert refused.status_code == 422
    assert "查看理由" in html.unescape(refused.text)
    assert await audit_entries(platform_services, object_id=order["id"], action="reveal_value") == []

    shown = await support.post(
        f"/orders/{order['id']}/reveal", {"field": "applicant_id_number", "reason": "申请人来电要求核对身份"}
    )
    assert shown.status_code == 200
    assert ADULT_ID_NUMBER in shown.text
    (entry,) = await audit_entries(platform_services, object_id=order["id"], action="reveal_value")
    assert (entry.actor, entry.after) == (
        "staff:reveal.support",
        {"field": "applicant_id_number", "reason": "申请人来电要求核对身份"},
    )

    admin = await console_for("reveal.admin", ["admin"])
    searched = await admin.get("/audit", action="reveal_value")
    assert "reveal.support" in searched.text
    assert "申请人来电要求核对身份" in html.unescape(searched.text)
