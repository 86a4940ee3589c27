"""The console in headless Chromium: an applicant's paid order goes through review, production,
shipping and invoicing by a staff member clicking through the pages, and the audit log shows
all four actions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.clock import FrozenClock
from seal_platform.db import Base
from seal_platform.security import PasswordHasher
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.sms import ConsoleSmsProvider
from tests.browser.conftest import browser_page
from tests.fixtures.served import free_port, serve_in_thread
from tests.fixtures.staff import add_staff
from tests.platform.conftest import ADULT_ID_NUMBER, SERVICE_KEY, import_all_platform_modules, new_phone
from tests.platform.conftest import TestAccount as Applicant
from tests.platform.test_orders_support import COMPANY, USCC, paid_enterprise_order

__all__ = ["browser_page"]

pytestmark = pytest.mark.browser

WORKER_PASSWORD = "console-worker-pass"
AUDITOR_PASSWORD = "console-auditor-pass"


@dataclass
class LivePlatform:
    url: str
    services: PlatformServices
    sms: ConsoleSmsProvider


@pytest.fixture
def live_platform(tmp_path: Path) -> Iterator[LivePlatform]:
    """The platform app served by uvicorn on a free port, with staff members ready."""
    port = free_port()
    settings = PlatformSettings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}",
        data_dir=tmp_path / "platform-data",
        service_key=SERVICE_KEY,
        secret_key="browser-test-secret-key",
        public_base_url=f"http://127.0.0.1:{port}",
    )
    sms = ConsoleSmsProvider()
    services = build_platform_services(
        settings,
        FrozenClock(),
        sms_provider=sms,
        password_hasher=PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1),
    )

    async def prepare() -> None:
        import_all_platform_modules()
        async with services.db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await add_staff(
            services, "ops", ["reviewer", "producer", "shipper", "finance"], password=WORKER_PASSWORD
        )
        await add_staff(services, "auditor", ["admin"], password=AUDITOR_PASSWORD)
        # The server's event loop opens its own connections.
        await services.db.dispose()

    asyncio.run(prepare())
    with serve_in_thread(create_platform_app(services), port) as url:
        yield LivePlatform(url, services, sms)


async def _applicant_with_invoice_request(live: LivePlatform) -> tuple[dict[str, Any], str]:
    """Register, verify, apply, pay and ask for an invoice, all through the platform API."""
    async with httpx.AsyncClient(
        base_url=live.url, headers={"Authorization": f"Bearer {SERVICE_KEY}"}
    ) as api:
        phone = new_phone()
        sent = await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
        assert sent.status_code == 201, sent.text
        registered = await api.post(
            "/v1/accounts",
            json={"phone": phone, "sms_code": live.sms.last_code(phone, "register"), "password": "secret123"},
        )
        assert registered.status_code == 201, registered.text
        body = registered.json()
        account = Applicant(body["account"]["id"], body["session"]["token"], phone, "secret123")
        verified = await api.post(
            "/v1/me/realname", json={"name": "张三", "id_number": ADULT_ID_NUMBER}, headers=account.headers
        )
        assert verified.status_code == 200, verified.text
        order = await paid_enterprise_order(api, account)
        assert order["status"] == "under_review"
        invoice = await api.post(
            f"/v1/orders/{order['id']}/invoice",
            json={"title": COMPANY["name"], "tax_number": USCC, "email": "finance@example.cn"},
            headers=account.headers,
        )
        assert invoice.status_code == 201, invoice.text
        return order, str(invoice.json()["id"])


def _log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login")
    page.wait_for_url(f"{base}/console/")


def test_staff_review_produce_ship_and_invoice_an_order_in_the_browser(
    live_platform: LivePlatform, browser_page: Any, tmp_path: Path
) -> None:
    # Playwright's sync API owns this thread's event loop: the applicant's steps run beside it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        order, invoice_id = pool.submit(asyncio.run, _applicant_with_invoice_request(live_platform)).result()
    page = browser_page
    base = live_platform.url
    card = f"#order-{order['id']}"

    _log_in(page, base, "ops", WORKER_PASSWORD)
    assert page.inner_text("#count-review .num") == "1"
    assert page.inner_text("#count-invoices .num") == "1"
    page.screenshot(path=str(tmp_path / "01-dashboard.png"), full_page=True)

    # Review: the documents and the drawn impression are on the page before approving.
    page.click("#nav-review")
    assert COMPANY["name"] in page.inner_text(f"{card} .company-name")
    assert page.inner_text(f"{card} .uscc") == USCC
    impression = page.locator(f"{card} img.impression")
    impression.wait_for()
    loaded = page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0 && img.naturalWidth", arg=impression.element_handle()
    )
    assert loaded.json_value() == 236  # the 40 mm seal at preview resolution
    documents = page.locator(f"{card} figure.doc img")
    assert documents.count() == 2
    page.set_viewport_size({"width": 1200, "height": 900})
    page.screenshot(path=str(tmp_path / "02-review-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(tmp_path / "03-review-phone.png"), full_page=True)
    page.click(f"{card} button.approve")
    assert "审核通过" in page.inner_text("#flash")

    # Production: the impression shown again, then the seal is made.
    page.click("#nav-production")
    page.locator(f"{card} img.impression").wait_for()
    page.click(f"{card} button.produce")
    assert "已开始制作" in page.inner_text("#flash")
    # the run goes on in the background: the page follows its steps and, once it has finished,
    # reloads without the order (now in the shipping queue)
    page.locator(card).wait_for(state="detached", timeout=20_000)

    # Shipping: a wrong waybill is refused on the page, the right one gives a tracking link.
    page.click("#nav-shipping")
    page.fill(f"{card} input.waybill", "SF12345")
    page.click(f"{card} form.ship button")
    assert "顺丰运单号应为SF加13位数字" in page.inner_text("#flash")
    page.fill(f"{card} input.waybill", "SF1234567890123")
    page.click(f"{card} form.ship button")
    assert "已登记顺丰运单" in page.inner_text("#flash")
    tracking = page.get_attribute(f"#transit-{order['id']} a.tracking", "href")
    assert tracking is not None
    assert tracking.endswith("billno=SF1234567890123")
    page.screenshot(path=str(tmp_path / "04-shipping.png"), full_page=True)

    # Invoicing.
    page.click("#nav-invoices")
    page.click(f"#invoice-{invoice_id} button.issue")
    assert "发票已开具" in page.inner_text("#flash")
    assert page.locator(f"#issued-{invoice_id}").count() == 1

    # The audit log (an admin's page) shows all four actions, by whom, with before and after.
    page.click("#staff-name ~ form button")
    page.wait_for_url(f"{base}/console/login")
    _log_in(page, base, "auditor", AUDITOR_PASSWORD)
    page.click("#nav-audit")
    rows = page.locator("tr.audit-row")
    actions = {
        rows.nth(i).get_attribute("data-action"): rows.nth(i).inner_text() for i in range(rows.count())
    }
    for action in ("approve", "produce", "ship", "issue_invoice"):
        assert action in actions, actions.keys()
        assert "staff:ops" in actions[action]
    # statuses and field names in plain Chinese, not the platform's codes
    assert "待审核" in actions["approve"]
    assert "审核通过" in actions["approve"]
    assert "驳回原因" in actions["approve"]
    for code in ("under_review", "approved", "reject_reason", "tracking_url"):
        assert code not in actions["approve"] + actions["ship"], code
    assert "SF1234567890123" in actions["ship"]
    page.set_viewport_size({"width": 1200, "height": 900})
    page.screenshot(path=str(tmp_path / "05-audit.png"), full_page=True)
