"""The manual invoicing adapter in the console: finance upload the invoice issued in the tax
system; a file whose amounts differ from the order is refused with the expected amounts."""

from __future__ import annotations

import httpx

from seal_platform.settings import PlatformSettings
from tests.console.conftest import StaffFactory
from tests.console.support import invoice_requested
from tests.platform.conftest import MakeAccount
from tests.platform.test_invoicing import invoice_xml


async def test_finance_upload_the_tax_system_invoice_and_the_applicant_gets_it(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    console_for: StaffFactory,
    platform_settings: PlatformSettings,
) -> None:
    platform_settings.invoice_provider = "manual"
    order, invoice_id = await invoice_requested(api, make_account)
    finance = await console_for("qian.finance", ["finance"])
    page = await finance.get("/invoices")
    assert f'action="/console/invoices/{invoice_id}/upload"' in page.text
    assert "开具电子发票" not in page.text

    async def upload(files: list[tuple[str, tuple[str, bytes, str]]]) -> str:
        return await finance.act(f"/invoices/{invoice_id}/upload", files=files)

    wrong = invoice_xml("26442000000000055555", "300.00", "300.00", "0.00")
    refused = await upload([("files", ("fp.xml", wrong, "application/xml"))])
    assert refused == "发票金额与订单不一致：价税合计、金额、税额应为 300.00、283.02、16.98"

    pdf = b"%PDF-1.7 from the tax system"
    right = invoice_xml("26442000000000055555", "300.00", "283.02", "16.98")
    done = await upload(
        [("files", ("fp.pdf", pdf, "application/pdf")), ("files", ("fp.xml", right, "application/xml"))]
    )
    assert done == "发票文件已上传，将发送给申请人。"
    issued = await api.get(f"/v1/invoices/{invoice_id}", headers=order["_account"].headers)
    assert issued.json()["invoice_number"] == "26442000000000055555"
    delivered = await api.get(f"/v1/invoices/{invoice_id}/pdf", headers=order["_account"].headers)
    assert delivered.content == pdf
