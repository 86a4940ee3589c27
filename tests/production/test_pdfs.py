from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from seal_platform.errors import InvalidInput
from seal_platform.production.impression_form import ImpressionFormData, render_impression_form
from seal_platform.production.invoice_pdf import (
    Invoice,
    InvoiceLine,
    InvoiceParty,
    amount_in_chinese_capitals,
    render_invoice_pdf,
)
from seal_platform.production.seseal import SealKind

PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.skipif(PDFTOTEXT is None, reason="needs pdftotext (Debian poppler-utils)")


def _text(pdf: bytes, tmp_path: Path) -> str:
    assert PDFTOTEXT is not None
    path = tmp_path / "document.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(  # noqa: S603 - fixed arguments, a file the test wrote
        [PDFTOTEXT, "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
    )
    return result.stdout.decode("utf-8")


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


FORM = ImpressionFormData(
    order_number="SO202611280001",
    company_name="广州瑞术科技有限公司",
    uscc="91110000600037341L",
    legal_representative="张三",
    seal_kind=SealKind.ORGANISATION,
    applied_on=date(2026, 11, 28),
    agent_name="李四",
    agent_phone="13800138000",
)


@needs_pdftotext
def test_impression_form_carries_the_applicant_data(tmp_path: Path) -> None:
    pdf = render_impression_form(FORM)
    assert pdf.startswith(b"%PDF")
    assert _pages(pdf) == 1
    text = _text(pdf, tmp_path)
    for expected in (
        "电子印章印模采集表",
        "SO202611280001",
        "广州瑞术科技有限公司",
        "91110000600037341L",
        "张三",
        "单位电子公章",
        "2026年11月28日",
        "李四",
        "13800138000",
        "单位公章盖章处",
        "法定代表人签字处",
        "法定代表人名章盖章处",
    ):
        assert expected in text, expected
    for step in ("填写：", "盖章：", "扫描：", "上传："):
        assert step in text


@needs_pdftotext
def test_personal_seal_form_names_the_personal_seal(tmp_path: Path) -> None:
    personal = ImpressionFormData(**{**FORM.__dict__, "seal_kind": SealKind.PERSONAL})
    text = _text(render_impression_form(personal), tmp_path)
    assert "法定代表人电子名章" in text
    assert "单位电子公章" not in text


@pytest.mark.parametrize("field", ["order_number", "company_name", "uscc", "legal_representative"])
def test_impression_form_needs_the_applicant_data(field: str) -> None:
    incomplete = ImpressionFormData(**{**FORM.__dict__, field: "  "})
    with pytest.raises(InvalidInput):
        render_impression_form(incomplete)


INVOICE = Invoice(
    invoice_number="26442000000012345678",
    issued_on=date(2026, 11, 28),
    buyer=InvoiceParty("广州瑞术科技有限公司", "91110000600037341L"),
    seller=InvoiceParty("sealbot 电子印章服务有限公司", "91440101MA5D00000X"),
    lines=[
        InvoiceLine("*信息技术服务*电子印章制作（企业公章，2年）", Decimal("1"), Decimal("388.00")),
        InvoiceLine("*信息技术服务*UKey 介质", Decimal("2"), Decimal("50.50"), Decimal("0.13"), unit="个"),
    ],
    remarks="订单号 SO202611280001",
    issuer="系统",
)


def test_invoice_totals_split_tax_out_of_paid_prices() -> None:
    first, second = INVOICE.lines
    assert (first.amount_with_tax, first.amount_without_tax, first.tax) == (
        Decimal("388.00"),
        Decimal("366.04"),
        Decimal("21.96"),
    )
    assert (second.amount_with_tax, second.amount_without_tax, second.tax) == (
        Decimal("101.00"),
        Decimal("89.38"),
        Decimal("11.62"),
    )
    assert INVOICE.total_with_tax == Decimal("489.00")
    assert INVOICE.total_without_tax + INVOICE.total_tax == INVOICE.total_with_tax


@needs_pdftotext
def test_invoice_pdf_shows_parties_items_and_totals(tmp_path: Path) -> None:
    pdf = render_invoice_pdf(INVOICE)
    assert pdf.startswith(b"%PDF")
    text = _text(pdf, tmp_path)
    for expected in (
        "电子发票",
        "26442000000012345678",
        "2026年11月28日",
        "广州瑞术科技有限公司",
        "91110000600037341L",
        "sealbot 电子印章服务有限公司",
        "91440101MA5D00000X",
        "UKey 介质",
        "366.04",
        "44.69",  # 单价 without tax beside 金额 without tax: 89.38 / 2
        "21.96",
        "13%",
        "¥455.42",
        "¥33.58",
        "肆佰捌拾玖元整",
        "¥489.00",
        "订单号 SO202611280001",
    ):
        assert expected in text, expected
    # The tax-included price of a line is never shown as its 单价 (issue 11).
    assert "388.00" not in text
    assert "样例" in text


@pytest.mark.parametrize(
    "invoice",
    [
        Invoice("NO-1", date(2026, 1, 1), INVOICE.buyer, INVOICE.seller, INVOICE.lines),
        Invoice("1", date(2026, 1, 1), INVOICE.buyer, InvoiceParty("卖方", ""), INVOICE.lines),
        Invoice("1", date(2026, 1, 1), INVOICE.buyer, INVOICE.seller, []),
        Invoice(
            "1", date(2026, 1, 1), INVOICE.buyer, INVOICE.seller, [InvoiceLine("x", Decimal(0), Decimal(1))]
        ),
        Invoice("1", date(2026, 1, 1), INVOICE.buyer, INVOICE.seller, list(INVOICE.lines) * 5),
    ],
)
def test_bad_invoices_are_refused(invoice: Invoice) -> None:
    with pytest.raises(InvalidInput):
        render_invoice_pdf(invoice)


@pytest.mark.parametrize(
    ("amount", "capitals"),
    [
        ("0", "零元整"),
        ("0.05", "伍分"),
        ("0.50", "伍角整"),
        ("1", "壹元整"),
        ("1.05", "壹元零伍分"),
        ("1.50", "壹元伍角整"),
        ("10", "壹拾元整"),
        ("15.20", "壹拾伍元贰角整"),
        ("100", "壹佰元整"),
        ("101", "壹佰零壹元整"),
        ("110", "壹佰壹拾元整"),
        ("388.00", "叁佰捌拾捌元整"),
        ("1010", "壹仟零壹拾元整"),
        ("1001.01", "壹仟零壹元零壹分"),
        ("10000", "壹万元整"),
        ("100010", "壹拾万零壹拾元整"),
        ("105000", "壹拾万伍仟元整"),
        ("100500", "壹拾万零伍佰元整"),
        ("100001000", "壹亿零壹仟元整"),
        ("100101000", "壹亿零壹拾万壹仟元整"),
        ("1000000.99", "壹佰万元玖角玖分"),
        ("100000001", "壹亿零壹元整"),
        ("100010000", "壹亿零壹万元整"),
        ("123456789.12", "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元壹角贰分"),
        ("-388", "负叁佰捌拾捌元整"),
    ],
)
def test_amount_in_chinese_capitals(amount: str, capitals: str) -> None:
    assert amount_in_chinese_capitals(Decimal(amount)) == capitals


@pytest.mark.parametrize("amount", ["1.005", "NaN", "Infinity", "1e16"])
def test_amounts_that_cannot_be_written_are_refused(amount: str) -> None:
    with pytest.raises(InvalidInput):
        amount_in_chinese_capitals(Decimal(amount))
