"""The invoicing port: how an invoice requested in the chat gets issued.

Three adapters, chosen by ``PLATFORM_INVOICE_PROVIDER``:

- ``sandbox`` (embedded default only): the platform draws a sample PDF watermarked 样例;
- ``manual`` (production default): finance issue the invoice in the tax system themselves and
  upload it in the console (PDF, OFD or XML); the platform checks it against the order;
- ``nuonuo``: the Nuonuo open platform (诺诺开放平台) issues it over its signed HTTP API.

Amounts: prices include tax; 金额 = 价税合计 / (1 + rate) rounded to the fen, 税额 = 价税合计 - 金额.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from seal_platform.errors import UpstreamError

FEN = Decimal("0.01")


@dataclass(frozen=True)
class Amounts:
    """One invoice's money, in fen."""

    with_tax_fen: int  # 价税合计
    without_tax_fen: int  # 金额
    tax_fen: int  # 税额
    rate: Decimal

    @classmethod
    def of(cls, with_tax_fen: int, rate: Decimal) -> Amounts:
        with_tax = Decimal(with_tax_fen) / 100
        without_tax = (with_tax / (1 + rate)).quantize(FEN, ROUND_HALF_UP)
        without_tax_fen = int(without_tax * 100)
        return cls(with_tax_fen, without_tax_fen, with_tax_fen - without_tax_fen, rate)


def tax_rate(text: str) -> Decimal:
    try:
        rate = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a tax rate: {text!r}") from exc
    if not Decimal(0) <= rate < 1:
        raise ValueError(f"a tax rate is between 0 and 1: {text!r}")
    return rate


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


@dataclass(frozen=True)
class IssuedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class IssuedInvoice:
    """What the tax system issued: its number and date, and the files to give the buyer (the
    first one is what the chat delivers)."""

    number: str
    issued_on: date
    files: list[IssuedFile]


@dataclass(frozen=True)
class InvoiceOrder:
    """What an adapter needs to issue one invoice."""

    reference: str  # our invoice id: the provider's order number, so a retry never issues twice
    buyer_name: str
    buyer_tax_number: str
    buyer_email: str
    item_name: str
    amounts: Amounts
    drawer: str  # 开票人
    remarks: str
    # The provider's id of a request made earlier for this invoice whose result had not come
    # back (``InvoiceStillPending``): the adapter asks for that request's result instead of
    # submitting the invoice again.
    provider_serial: str = ""


class InvoiceStillPending(UpstreamError):
    """The provider accepted the request as ``serial`` but its result has not come back (yet):
    a retry must ask for that request, not submit the invoice again."""

    code = "invoice_result_pending"

    def __init__(self, message: str, *, serial: str, **details: Any) -> None:
        super().__init__(message, invoice_serial=serial, **details)
        self.serial = serial


# Called with the provider's id of a request the moment the provider has accepted it, before
# its result is awaited: the caller stores it, so that a process that dies while waiting
# leaves what the next attempt needs to ask for that request instead of submitting again.
KeepSerial = Callable[[str], Awaitable[None]]


class InvoicingProvider(Protocol):
    name: str

    async def issue(self, order: InvoiceOrder, *, accepted: KeepSerial | None = None) -> IssuedInvoice:
        """Issue (or, for the same ``reference``, find the already issued) invoice, or raise
        ``UpstreamError``. A provider that answers later than it accepts calls ``accepted``
        with the request's id (``InvoiceOrder.provider_serial`` on a later attempt)."""
        ...
