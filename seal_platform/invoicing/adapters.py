"""The sandbox and manual adapters, and the choice of adapter from settings."""

from __future__ import annotations

import asyncio
import re
import secrets
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from seal_platform.errors import InvalidInput, RuleViolation
from seal_platform.invoicing import (
    Amounts,
    InvoiceOrder,
    InvoicingProvider,
    IssuedFile,
    IssuedInvoice,
    KeepSerial,
)
from seal_platform.operator import seller_name
from seal_platform.production.invoice_pdf import Invoice as InvoiceDocument
from seal_platform.production.invoice_pdf import InvoiceLine, InvoiceParty, render_invoice_pdf

if TYPE_CHECKING:
    from seal_platform.services import PlatformServices
    from seal_platform.settings import PlatformSettings


@dataclass
class SandboxInvoicing:
    """Draws a sample PDF (watermarked 样例); the embedded default, refused in production."""

    settings: PlatformSettings
    now: datetime
    name: str = field(default="sandbox", init=False)

    async def issue(self, order: InvoiceOrder, *, accepted: KeepSerial | None = None) -> IssuedInvoice:
        # A sample number: 20 digits like a 数电发票 number, starting with the two-digit year.
        number = self.now.strftime("%y") + "".join(secrets.choice("0123456789") for _ in range(18))
        document = InvoiceDocument(
            invoice_number=number,
            issued_on=self.now.date(),
            buyer=InvoiceParty(name=order.buyer_name, tax_number=order.buyer_tax_number),
            seller=InvoiceParty(
                name=seller_name(self.settings), tax_number=self.settings.invoice_seller_tax_number
            ),
            lines=[
                InvoiceLine(
                    name=order.item_name,
                    quantity=Decimal(1),
                    unit_price=Decimal(order.amounts.with_tax_fen) / 100,
                    tax_rate=order.amounts.rate,
                )
            ],
            remarks=order.remarks,
            issuer=order.drawer,
        )
        pdf = await asyncio.to_thread(render_invoice_pdf, document)
        return IssuedInvoice(
            number, self.now.date(), [IssuedFile(f"sample-{number}.pdf", "application/pdf", pdf)]
        )


class ManualInvoicing:
    """Finance issue the invoice in the tax system and upload it (``invoices.issue_uploaded``)."""

    name = "manual"

    async def issue(self, order: InvoiceOrder, *, accepted: KeepSerial | None = None) -> IssuedInvoice:
        raise RuleViolation(
            "请在税务系统开具后上传发票文件（PDF、OFD 或 XML）",
            code="invoice_needs_upload",
            invoice_id=order.reference,
        )


def provider_for(services: PlatformServices) -> InvoicingProvider:
    """The configured adapter (tests pass their own as ``services.invoicing``)."""
    if services.invoicing is not None:
        return services.invoicing
    settings = services.settings
    chosen = settings.effective_invoice_provider
    if chosen == "nuonuo":
        from seal_platform.invoicing.nuonuo import NuonuoInvoicing

        return NuonuoInvoicing(
            app_key=settings.nuonuo_app_key,
            app_secret=settings.nuonuo_app_secret.get_secret_value(),
            access_token=settings.nuonuo_access_token.get_secret_value(),
            seller_tax_number=settings.invoice_seller_tax_number,
            seller_address=settings.invoice_seller_address,
            seller_bank=settings.invoice_seller_bank,
            url=settings.nuonuo_url,
            poll_interval=settings.nuonuo_poll_seconds,
        )
    if chosen == "manual":
        return ManualInvoicing()
    return SandboxInvoicing(settings, services.clock.now())


# -- uploads: what finance issued in the tax system ----------------------------------------------

UPLOAD_TYPES = {
    b"%PDF-": ("application/pdf", "pdf"),
    b"PK\x03\x04": ("application/ofd", "ofd"),  # an OFD file is a zip container
}


@dataclass(frozen=True)
class UploadedFacts:
    number: str
    issued_on: date
    amounts_fen: tuple[int, int, int] | None  # 价税合计, 金额, 税额 as read from the XML


def sniff_upload(data: bytes) -> tuple[str, str]:
    """(content type, extension) of an uploaded invoice file, or ``InvalidInput``."""
    for magic, kind in UPLOAD_TYPES.items():
        if data.startswith(magic):
            return kind
    if data.lstrip()[:5] == b"<?xml" or data.lstrip()[:1] == b"<":
        return "application/xml", "xml"
    raise InvalidInput("发票文件须为 PDF、OFD 或 XML 格式", code="invoice_file_type")


def _fen(text: str) -> int:
    try:
        return int((Decimal(text.strip()) * 100).to_integral_value())
    except (InvalidOperation, ValueError) as exc:
        raise InvalidInput("发票 XML 中的金额无法识别", code="invoice_xml_unreadable") from exc


def read_invoice_xml(data: bytes) -> UploadedFacts:
    """Number, date and amounts of a 数电发票 XML (elements found by local name, whatever the
    namespace: InvoiceNumber / EIid, IssueTime / RequestTime, TotalTax-includedAmount,
    TotalAmWithoutTax, TotalTaxAm)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidInput("发票 XML 含有不允许的声明", code="invoice_xml_unreadable")
    try:
        root = ElementTree.fromstring(data)  # noqa: S314 - DTDs and entities refused above
    except ElementTree.ParseError as exc:
        raise InvalidInput("发票 XML 无法解析", code="invoice_xml_unreadable") from exc
    found: dict[str, str] = {}
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if element.text and element.text.strip() and local not in found:
            found[local] = element.text.strip()
    number = found.get("InvoiceNumber") or found.get("EIid") or ""
    when = found.get("IssueTime") or found.get("RequestTime") or ""
    matched = re.match(r"(\d{4})-?(\d{2})-?(\d{2})", when)
    if not number or not matched:
        raise InvalidInput("发票 XML 中没有找到发票号码或开票日期", code="invoice_xml_unreadable")
    amounts = None
    if {"TotalTax-includedAmount", "TotalAmWithoutTax", "TotalTaxAm"} <= found.keys():
        amounts = (
            _fen(found["TotalTax-includedAmount"]),
            _fen(found["TotalAmWithoutTax"]),
            _fen(found["TotalTaxAm"]),
        )
    issued_on = date(int(matched.group(1)), int(matched.group(2)), int(matched.group(3)))
    return UploadedFacts(number=number, issued_on=issued_on, amounts_fen=amounts)


def check_against_order(facts_amounts: tuple[int, int, int], expected: Amounts) -> None:
    """The uploaded invoice's amounts must be the order's (price with tax, split at the rate)."""
    wanted = (expected.with_tax_fen, expected.without_tax_fen, expected.tax_fen)
    if facts_amounts != wanted:
        raise InvalidInput(
            "发票金额与订单不一致：价税合计、金额、税额应为 "
            + "、".join(f"{Decimal(v) / 100:.2f}" for v in wanted),
            code="invoice_amount_mismatch",
            expected=[f"{Decimal(v) / 100:.2f}" for v in wanted],
        )
