"""With Nuonuo, an invoice whose submission was accepted but whose answer was lost (the serial
number never reached the platform) cannot be submitted again: Nuonuo refuses the repeated order
number for good. Finance are told so, with the order number to look up at Nuonuo, and upload
the invoice from there on the same page."""

from __future__ import annotations

import httpx

from seal_platform.invoicing.nuonuo import REQUEST_METHOD
from seal_platform.settings import PlatformSettings
from tests.console.conftest import StaffFactory
from tests.console.support import invoice_requested
from tests.fakes.nuonuo import FakeNuonuo
from tests.platform.conftest import MakeAccount
from tests.platform.test_invoicing import fake_nuonuo as fake_nuonuo
from tests.platform.test_invoicing import invoice_xml
from tests.platform.test_invoicing import nuonuo_settings as nuonuo_settings

__all__ = ["fake_nuonuo", "nuonuo_settings"]


async def test_a_lost_nuonuo_answer_is_explained_and_the_invoice_uploaded_from_nuonuo(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    console_for: StaffFactory,
    nuonuo_settings: PlatformSettings,
    fake_nuonuo: FakeNuonuo,
) -> None:
    order, invoice_id = await invoice_requested(api, make_account)
    finance = await console_for("qian.finance", ["finance"])
    page = await finance.get("/invoices")
    assert f'action="/console/invoices/{invoice_id}/issue"' in page.text
    # the fall-back is there, folded away, beside the button that normally does the work
    assert f'action="/console/invoices/{invoice_id}/upload"' in page.text

    fake_nuonuo.lose_next_answer = True
    assert await finance.act(f"/invoices/{invoice_id}/issue") == "开票服务暂时无法访问，请稍后再试"
    order_no = fake_nuonuo.orders[0]["orderNo"]
    told = await finance.act(f"/invoices/{invoice_id}/issue")
    assert told == (
        f"这张发票此前已提交到诺诺，但开具结果没有取回：请在诺诺平台找到它（订单编号{order_no}），"
        "下载发票文件后在本页上传"
    )
    assert fake_nuonuo.methods.count(REQUEST_METHOD) == 2  # asked once more, refused, no loop
    assert len(fake_nuonuo.orders) == 1

    pdf = b"%PDF-1.7 downloaded from Nuonuo"
    xml = invoice_xml("26442000000000012345", "300.00", "283.02", "16.98")
    done = await finance.act(
        f"/invoices/{invoice_id}/upload",
        files=[("files", ("fp.pdf", pdf, "application/pdf")), ("files", ("fp.xml", xml, "application/xml"))],
    )
    assert done == "发票文件已上传，将发送给申请人。"
    issued = await api.get(f"/v1/invoices/{invoice_id}", headers=order["_account"].headers)
    assert issued.json()["invoice_number"] == "26442000000000012345"
