"""The queues and their actions: review, production, shipping, invoices, order detail, audit."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image

from seal_platform.services import PlatformServices
from tests.console.conftest import StaffFactory
from tests.console.support import ConsoleClient, audit_entries, order_under_review
from tests.platform.conftest import MakeAccount
from tests.platform.test_orders_support import COMPANY, USCC, another_company


async def _order(api: httpx.AsyncClient, order: dict[str, Any]) -> dict[str, Any]:
    response = await api.get(f"/v1/orders/{order['id']}", headers=order["_account"].headers)
    return dict(response.json())


async def test_review_queue_shows_the_applicant_company_documents_and_impression_preview(
    order: dict[str, Any],
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    reviewer = await console_for("li.reviewer", ["reviewer"])

    page = await reviewer.get("/review")

    assert page.status_code == 200
    assert f'id="order-{order["id"]}"' in page.text
    assert COMPANY["name"] in page.text
    assert USCC in page.text
    assert COMPANY["legal_rep_name"] in page.text
    # The ID number of the legal representative is masked, never shown whole.
    assert COMPANY["legal_rep_id"] not in page.text
    assert "张三" in page.text  # the applicant's real name
    for document_id in order["documents"].values():
        assert f'<img src="/console/documents/{document_id}"' in page.text
    assert f"/console/orders/{order['id']}/impression/enterprise.png" in page.text
    assert "营业执照" in page.text


async def test_a_reviewer_s_document_preview_is_served_and_audited(
    order: dict[str, Any],
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    reviewer = await console_for("doc.reviewer", ["reviewer"])
    licence = order["documents"]["business_licence"]

    response = await reviewer.get(f"/documents/{licence}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content.startswith(b"\x89PNG")
    (entry,) = await audit_entries(platform_services, object_id=licence)
    assert (entry.actor, entry.action) == ("staff:doc.reviewer", "preview_document")


async def test_the_impression_preview_is_drawn_from_the_order_before_production(
    order: dict[str, Any],
    console_for: StaffFactory,
) -> None:
    reviewer = await console_for("seal.reviewer", ["reviewer"])

    response = await reviewer.get(f"/orders/{order['id']}/impression/enterprise.png")

    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    # A 40 mm round seal drawn at 150 dpi, in red ink on transparency.
    assert image.size == (236, 236)
    assert image.mode == "RGBA"
    red = [px for px in image.get_flattened_data() if px[3] > 200]
    assert red
    assert all(px[:3] == (230, 0, 18) for px in red)
    assert (await reviewer.get(f"/orders/{order['id']}/impression/personal.png")).status_code == 404


async def test_approve_moves_the_order_to_production_and_is_audited_with_before_and_after(
    order: dict[str, Any],
    api: httpx.AsyncClient,
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    reviewer = await console_for("li.reviewer", ["reviewer"])
    producer = await console_for("wang.producer", ["producer"])

    message = await reviewer.act(f"/orders/{order['id']}/approve")

    assert "审核通过" in message
    assert (await _order(api, order))["status"] == "approved"
    assert reviewer.last is not None
    assert f'id="order-{order["id"]}"' not in reviewer.last.text  # gone from the review queue
    (entry,) = await audit_entries(platform_services, object_id=order["id"])
    assert entry.actor == "staff:li.reviewer"
    assert entry.action == "approve"
    assert entry.before is not None
    assert entry.before["status"] == "under_review"
    assert entry.after is not None
    assert entry.after["status"] == "approved"
    production = await producer.get("/production")
    assert f'id="order-{order["id"]}"' in production.text


async def test_reject_needs_a_reason_and_sends_it_to_the_applicant(
    order: dict[str, Any],
    api: httpx.AsyncClient,
    console_for: StaffFactory,
) -> None:
    reviewer = await console_for("li.reviewer", ["reviewer"])

    refused = await reviewer.act(f"/orders/{order['id']}/reject", {"reason": "  "})
    assert "请填写驳回原因" in refused
    assert (await _order(api, order))["status"] == "under_review"

    reason = "营业执照扫描件未加盖公章，请盖章后重新上传"
    assert "已驳回" in await reviewer.act(f"/orders/{order['id']}/reject", {"reason": reason})
    rejected = await _order(api, order)
    assert rejected["status"] == "rejected"
    assert rejected["reject_reason"] == reason


async def test_a_refusal_of_the_state_machine_is_a_message_not_a_server_error(
    order: dict[str, Any],
    api: httpx.AsyncClient,
    console_for: StaffFactory,
) -> None:
    admin = await console_for("root", ["admin"])

    # Production before review: the state machine refuses.
    message = await admin.act(f"/orders/{order['id']}/produce")
    assert "当前状态不允许" in message
    assert (await _order(api, order))["status"] == "under_review"

    await admin.act(f"/orders/{order['id']}/approve")
    # A second approval (a colleague's stale page): the same clear message.
    assert "当前状态不允许" in await admin.act(f"/orders/{order['id']}/approve")
    missing = await admin.post("/orders/00000000-0000-0000-0000-000000000000/approve")
    assert missing.status_code == 303


async def _produced(admin: ConsoleClient, order_id: str) -> None:
    assert "审核通过" in await admin.act(f"/orders/{order_id}/approve")
    message, run = await admin.produce(order_id)
    assert "已开始制作" in message, message
    assert run["error"] is None, run


async def test_production_then_shipping_with_a_validated_sf_waybill_and_a_tracking_link(
    order: dict[str, Any],
    api: httpx.AsyncClient,
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    admin = await console_for("root", ["admin"])
    shipper = await console_for("zhao.shipper", ["shipper"])
    await _produced(admin, order["id"])
    assert (await _order(api, order))["status"] == "in_production"

    queue = await shipper.get("/shipping")
    assert f'id="order-{order["id"]}"' in queue.text
    assert "天河路 100 号 20 楼" in queue.text  # where it goes

    for bad in ("SF123", "1234567890123", "YT1234567890123"):
        message = await shipper.act(f"/orders/{order['id']}/ship", {"waybill": bad})
        assert "顺丰运单号应为SF加13位数字" in message, bad
    assert (await _order(api, order))["status"] == "in_production"

    message = await shipper.act(f"/orders/{order['id']}/ship", {"waybill": "sf 1234567890123"})
    assert "已登记顺丰运单" in message
    shipped = await _order(api, order)
    assert shipped["status"] == "shipped"
    assert shipped["waybill"] == "SF1234567890123"
    page = shipper.last.text if shipper.last else ""
    assert f'id="transit-{order["id"]}"' in page
    assert "billno=SF1234567890123" in page

    assert "签收" in await shipper.act(f"/orders/{order['id']}/complete")
    assert (await _order(api, order))["status"] == "completed"
    actions = [e.action for e in await audit_entries(platform_services, object_id=order["id"])]
    assert actions == ["approve", "produce", "ship", "complete"]


async def test_the_production_page_shows_the_impression_that_will_be_made(
    order: dict[str, Any],
    console_for: StaffFactory,
) -> None:
    admin = await console_for("root", ["admin"])
    await admin.act(f"/orders/{order['id']}/approve")
    page = await admin.get("/production")
    assert f"/console/orders/{order['id']}/impression/enterprise.png" in page.text
    assert "印模预览" in page.text
    await admin.produce(order["id"])
    detail = await admin.get(f"/orders/{order['id']}")
    assert "已制作的印模" in detail.text
    produced = await admin.get(f"/orders/{order['id']}/impression/enterprise.png")
    # The stored 300 dpi original of the seal itself now.
    assert Image.open(io.BytesIO(produced.content)).size == (472, 472)


async def test_finance_issues_a_requested_invoice(
    order: dict[str, Any],
    api: httpx.AsyncClient,
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    requested = await api.post(
        f"/v1/orders/{order['id']}/invoice",
        json={"title": COMPANY["name"], "tax_number": USCC, "email": "cw@example.cn"},
        headers=order["_account"].headers,
    )
    assert requested.status_code == 201, requested.text
    invoice_id = requested.json()["id"]
    finance = await console_for("qian.finance", ["finance"])

    queue = await finance.get("/invoices")
    assert f'id="invoice-{invoice_id}"' in queue.text
    assert "¥300.00" in queue.text

    assert "发票已开具" in await finance.act(f"/invoices/{invoice_id}/issue")
    issued = await api.get(f"/v1/invoices/{invoice_id}", headers=order["_account"].headers)
    assert issued.json()["status"] == "issued"
    page = finance.last.text if finance.last else ""
    assert f'id="issued-{invoice_id}"' in page
    pdf_id = issued.json()["document_id"]
    pdf = await finance.get(f"/documents/{pdf_id}")
    assert pdf.content.startswith(b"%PDF-")
    assert "已经开具过" in await finance.act(f"/invoices/{invoice_id}/issue")
    (entry,) = await audit_entries(platform_services, object_id=invoice_id)
    assert (entry.actor, entry.action) == ("staff:qian.finance", "issue_invoice")


async def test_order_detail_shows_history_and_the_staff_actions(
    order: dict[str, Any],
    console_for: StaffFactory,
) -> None:
    admin = await console_for("root", ["admin"])
    await admin.act(f"/orders/{order['id']}/reject", {"reason": "印模采集表不清晰，请重新扫描"})

    detail = await admin.get(f"/orders/{order['id']}")

    assert detail.status_code == 200
    history = detail.text.split('id="history"')[1].split("</table>")[0]
    for label in ("待支付", "已支付", "待审核", "已驳回"):
        assert label in history
    assert "staff:root" in detail.text
    assert "印模采集表不清晰，请重新扫描" in detail.text
    assert (await admin.get("/orders/no-such-order")).status_code == 404


async def test_dashboard_counts_each_queue(
    api: httpx.AsyncClient, make_account: MakeAccount, console_for: StaffFactory
) -> None:
    first = await order_under_review(api, make_account)
    await order_under_review(api, make_account, another_company(1))  # one open order per company
    admin = await console_for("root", ["admin"])
    await admin.act(f"/orders/{first['id']}/approve")

    page = await admin.get("/")

    def count(key: str) -> str:
        return page.text.split(f'id="count-{key}"')[1].split('class="num">')[1].split("<")[0]

    assert (count("review"), count("production"), count("shipping"), count("invoices")) == (
        "1",
        "1",
        "0",
        "0",
    )


async def test_orders_can_be_found_by_company_name_and_status(
    order: dict[str, Any],
    console_for: StaffFactory,
) -> None:
    support = await console_for("kefu", ["support"])
    found = await support.get("/orders", q="示例科技", status="under_review")
    assert f"/console/orders/{order['id']}" in found.text
    none = await support.get("/orders", q="示例科技", status="shipped")
    assert f"/console/orders/{order['id']}" not in none.text
    assert "没有符合条件的订单" in none.text


async def test_the_audit_log_lists_who_did_what_and_filters_by_action(
    order: dict[str, Any],
    console_for: StaffFactory,
) -> None:
    admin = await console_for("root", ["admin"])
    await admin.act(f"/orders/{order['id']}/approve")
    await admin.produce(order["id"])

    everything = await admin.get("/audit")
    assert everything.text.count('class="audit-row"') >= 3  # create_staff_user, approve, produce
    only_approvals = await admin.get("/audit", action="approve")
    rows = only_approvals.text.split('class="audit-row"')[1:]
    assert len(rows) == 1
    for shown in ("staff:root", "待审核", "审核通过"):  # statuses in words, not codes
        assert shown in rows[0]
    by_order = await admin.get("/audit", object_id=order["id"])
    assert by_order.text.count('class="audit-row"') == 2


async def test_the_production_page_polls_the_steps_the_station_reports_for_the_order(
    order: dict[str, Any],
    console_for: StaffFactory,
) -> None:
    admin = await console_for("root", ["admin"])
    assert "审核通过" in await admin.act(f"/orders/{order['id']}/approve")
    page = await admin.get("/production")
    assert "production-progress" in page.text
    assert "/static/production.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = await admin.get("/static/production.js")
    assert script.status_code == 200
    assert "production-progress" in script.text
    before = (await admin.get(f"/orders/{order['id']}/production-progress")).json()
    assert before["steps"] == []
    assert before["running"] is False

    message, after = await admin.produce(order["id"])
    assert "已开始制作" in message
    assert after["steps"] == ["init_token", "generate_key", "certify", "write", "verify"]
    assert after["labels"] == [
        "初始化空白 UKey",
        "在 UKey 内生成密钥",
        "签发证书与电子印章",
        "写入证书与电子印章",
        "读回校验",
    ]
    assert after["running"] is False
    assert after["staff"] == "root"


async def test_a_station_is_unpaired_from_the_console_only_after_confirming_and_can_no_longer_connect(
    console_for: StaffFactory, platform_services: PlatformServices
) -> None:
    from seal_platform.production.station_hub import station_hub
    from ukey_bridge import protocol as wire

    hub = station_hub(platform_services)
    admin = await console_for("root", ["admin"])
    paired = await hub.redeem(hub.create_code("root"), "制作台A")
    hello = wire.Hello(
        device_id=paired["device_id"], secret=paired["secret"], client_version="1", host_name="A"
    )
    assert await hub.authenticate(hello) == "root"
    assert [s.name for s in await hub.stations_of("root")] == ["制作台A"]

    unconfirmed = await admin.act(f"/station/{paired['device_id']}/unpair")
    assert "请勾选确认" in unconfirmed
    assert await hub.authenticate(hello) == "root", "nothing happens without the confirmation"

    done = await admin.act(f"/station/{paired['device_id']}/unpair", {"confirm": "yes"})
    assert "已解除配对" in done
    assert await hub.authenticate(hello) is None
    assert hub.valid_secret(paired["device_id"], paired["secret"]), "refused as revoked, not as forged"
    assert await hub.stations_of("root") == []
    again = await admin.act(f"/station/{paired['device_id']}/unpair", {"confirm": "yes"})
    assert "已经解除配对" in again
