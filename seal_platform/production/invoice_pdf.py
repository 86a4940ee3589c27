"""The e-invoice (电子发票) PDF and the Chinese capital-numeral amount (大写金额) it prints.

The layout follows the fully digitalised invoice (全电发票): title, number and date, buyer and
seller blocks, an item table, totals, the total with tax in capitals and in digits, remarks.
Prices handed in are what the customer paid (tax included); the table shows the amount
without tax and the tax, as the invoice does.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from reportlab.pdfgen.canvas import Canvas

from seal_platform.errors import InvalidInput
from seal_platform.production.fonts import reportlab_font_name, wrap_text

MM = 72 / 25.4  # points per millimetre
PAGE_SIZE = (240 * MM, 150 * MM)
MAX_LINES = 8  # more items go on a separate list (销货清单), which this renderer does not make
CENT = Decimal("0.01")

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_GROUP_UNITS = ("", "万", "亿", "万亿")
_MAX_AMOUNT = Decimal("10") ** 16


def amount_in_chinese_capitals(amount: Decimal) -> str:
    """Write a yuan amount in capital numerals, as on cheques and invoices.

    Rules (中国人民银行《支付结算办法》): 壹拾 is written out; runs of zeros inside the number
    read as one 零; the amount ends in 整 when there are no fen (壹元整, 壹元伍角整);
    fen after a zero jiao take 零 (壹元零伍分); negative amounts (red invoices) start with 负.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidInput("the amount must be a finite Decimal")
    if amount != amount.quantize(CENT):
        raise InvalidInput("the amount has more than two decimal places", amount=str(amount))
    if abs(amount) >= _MAX_AMOUNT:
        raise InvalidInput("the amount is too large to write in capitals", amount=str(amount))
    negative = amount < 0
    fen_total = int(abs(amount) * 100)
    yuan, cents = divmod(fen_total, 100)
    jiao, fen = divmod(cents, 10)
    if fen_total == 0:
        return "零元整"
    parts: list[str] = []
    if yuan:
        parts.append(_integer_in_capitals(yuan) + "元")
    if jiao:
        parts.append(_DIGITS[jiao] + "角")
    elif yuan and fen:
        parts.append("零")
    if fen:
        parts.append(_DIGITS[fen] + "分")
    else:
        parts.append("整")
    return ("负" if negative else "") + "".join(parts)


def _integer_in_capitals(value: int) -> str:
    digits = str(value)
    # Pad to whole groups of four, most significant group first.
    digits = digits.zfill((len(digits) + 3) // 4 * 4)
    groups = [digits[index : index + 4] for index in range(0, len(digits), 4)]
    out: list[str] = []
    zero_pending = False
    for group_index, group in enumerate(groups):
        group_unit = _GROUP_UNITS[len(groups) - 1 - group_index]
        for position, character in enumerate(group):
            digit = int(character)
            if digit == 0:
                zero_pending = bool(out)
                continue
            if zero_pending:
                out.append("零")
                zero_pending = False
            out.append(_DIGITS[digit] + _SMALL_UNITS[3 - position])
        if int(group):
            out.append(group_unit)
            # Zeros closing a group are silent (105000 is 壹拾万伍仟); an all-zero group keeps
            # its zero pending (100001000 is 壹亿零壹仟).
            zero_pending = False
    return "".join(out)


@dataclass(frozen=True)
class InvoiceParty:
    name: str
    tax_number: str = ""  # a person buying needs none


@dataclass(frozen=True)
class InvoiceLine:
    name: str
    quantity: Decimal
    unit_price: Decimal  # tax included
    tax_rate: Decimal = Decimal("0.06")  # modern services (现代服务)
    unit: str = "项"
    specification: str = ""

    @property
    def amount_with_tax(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT, ROUND_HALF_UP)

    @property
    def amount_without_tax(self) -> Decimal:
        return (self.amount_with_tax / (1 + self.tax_rate)).quantize(CENT, ROUND_HALF_UP)

    @property
    def tax(self) -> Decimal:
        return self.amount_with_tax - self.amount_without_tax

    @property
    def unit_price_without_tax(self) -> Decimal:
        """单价 beside 金额 is without tax too (the price the customer pays includes it)."""
        return (self.amount_without_tax / self.quantity).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class Invoice:
    invoice_number: str
    issued_on: date
    buyer: InvoiceParty
    seller: InvoiceParty
    lines: Sequence[InvoiceLine]
    remarks: str = ""
    issuer: str = ""  # 开票人

    @property
    def total_without_tax(self) -> Decimal:
        return sum((line.amount_without_tax for line in self.lines), Decimal("0"))

    @property
    def total_tax(self) -> Decimal:
        return sum((line.tax for line in self.lines), Decimal("0"))

    @property
    def total_with_tax(self) -> Decimal:
        return sum((line.amount_with_tax for line in self.lines), Decimal("0"))


def _check(invoice: Invoice) -> None:
    if not invoice.invoice_number.strip().isalnum():
        raise InvalidInput("the invoice number must be letters and digits", field="invoice_number")
    if not invoice.buyer.name.strip() or not invoice.seller.name.strip():
        raise InvalidInput("an invoice names its buyer and its seller")
    if not invoice.seller.tax_number.strip():
        raise InvalidInput("the seller's tax number is required", field="seller.tax_number")
    if not 1 <= len(invoice.lines) <= MAX_LINES:
        raise InvalidInput(f"an invoice has 1 to {MAX_LINES} lines", lines=len(invoice.lines))
    for line in invoice.lines:
        try:
            valid = line.quantity > 0 and line.unit_price >= 0 and 0 <= line.tax_rate < 1
        except InvalidOperation:
            valid = False
        if not valid or not line.name.strip():
            raise InvalidInput(
                "each invoice line needs a name, a positive quantity and a price", line=line.name
            )


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as one-page PDF bytes."""
    _check(invoice)
    font = reportlab_font_name()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=PAGE_SIZE, pageCompression=1)
    # The platform's own drawing is a sample of the layout only: a real 电子发票 is issued through
    # the tax authority's system (``seal_platform.invoicing``); this one is marked 样例 throughout.
    canvas.setTitle(f"样例 {invoice.invoice_number}")
    canvas.setAuthor(invoice.seller.name)
    width, height = PAGE_SIZE
    left, right = 10 * MM, width - 10 * MM
    brown = (0.55, 0.27, 0.07)  # the printed frame colour of Chinese invoices

    canvas.setFillColorRGB(*brown)
    canvas.setStrokeColorRGB(*brown)
    canvas.setFont(font, 18)
    canvas.drawCentredString(width / 2, height - 16 * MM, "电子发票样例（非正式票据）")
    canvas.setLineWidth(0.6)
    canvas.line(width / 2 - 38 * MM, height - 18 * MM, width / 2 + 38 * MM, height - 18 * MM)
    canvas.line(width / 2 - 38 * MM, height - 19 * MM, width / 2 + 38 * MM, height - 19 * MM)
    canvas.setFont(font, 9)
    canvas.drawString(right - 60 * MM, height - 12 * MM, "发票号码：")
    canvas.drawString(right - 60 * MM, height - 18 * MM, "开票日期：")
    canvas.setFillColorRGB(0, 0, 0)
    canvas.drawString(right - 44 * MM, height - 12 * MM, invoice.invoice_number.strip())
    canvas.drawString(right - 44 * MM, height - 18 * MM, f"{invoice.issued_on:%Y年%m月%d日}")

    top = height - 24 * MM
    party_height = 20 * MM
    canvas.setFillColorRGB(*brown)
    canvas.rect(left, top - party_height, right - left, party_height)
    canvas.line(width / 2, top, width / 2, top - party_height)
    for x, title, party in ((left, "购买方信息", invoice.buyer), (width / 2, "销售方信息", invoice.seller)):
        _draw_party(canvas, font, x, top, (right - left) / 2, title, party, brown)

    table_top = top - party_height
    y = _draw_lines(canvas, font, invoice, left, right, table_top, brown)

    canvas.setFillColorRGB(*brown)
    row = 8 * MM
    canvas.rect(left, y - row, right - left, row)
    canvas.setFont(font, 9)
    canvas.drawString(left + 2 * MM, y - 5.5 * MM, "价税合计（大写）")
    canvas.drawString(right - 62 * MM, y - 5.5 * MM, "（小写）")
    canvas.setFillColorRGB(0, 0, 0)
    canvas.setFont(font, 10)
    _draw_circled_cross(canvas, left + 33 * MM, y - 4.3 * MM, 1.6 * MM)
    canvas.drawString(left + 36 * MM, y - 5.5 * MM, amount_in_chinese_capitals(invoice.total_with_tax))
    canvas.drawString(right - 48 * MM, y - 5.5 * MM, "¥" + _money(invoice.total_with_tax))
    y -= row

    remarks_height = 14 * MM
    canvas.setFillColorRGB(*brown)
    canvas.rect(left, y - remarks_height, right - left, remarks_height)
    canvas.line(left + 10 * MM, y, left + 10 * MM, y - remarks_height)
    canvas.setFont(font, 9)
    canvas.drawString(left + 2.5 * MM, y - 6 * MM, "备")
    canvas.drawString(left + 2.5 * MM, y - 11 * MM, "注")
    canvas.setFillColorRGB(0, 0, 0)
    for index, line in enumerate(wrap_text(invoice.remarks, font, 9, right - left - 14 * MM)[:3]):
        canvas.drawString(left + 12 * MM, y - 5 * MM - index * 4 * MM, line)
    y -= remarks_height

    canvas.setFillColorRGB(*brown)
    canvas.drawString(left, y - 6 * MM, "开票人：")
    canvas.setFillColorRGB(0, 0, 0)
    canvas.drawString(left + 14 * MM, y - 6 * MM, invoice.issuer.strip())
    _draw_watermark(canvas, font, width, height)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _draw_watermark(canvas: Canvas, font: str, width: float, height: float) -> None:
    canvas.saveState()
    canvas.setFillColorRGB(0.85, 0.1, 0.1)
    canvas.setFillAlpha(0.18)
    canvas.setFont(font, 96)
    canvas.translate(width / 2, height / 2)
    canvas.rotate(20)
    canvas.drawCentredString(0, -30, "样例")
    canvas.restoreState()


def _draw_circled_cross(canvas: Canvas, x: float, y: float, radius: float) -> None:
    """The ⊗ printed before the capital amount (the embedded font has no such glyph)."""
    canvas.setLineWidth(0.5)
    canvas.circle(x, y, radius)
    offset = radius * 0.7071
    canvas.line(x - offset, y - offset, x + offset, y + offset)
    canvas.line(x - offset, y + offset, x + offset, y - offset)


def _draw_party(
    canvas: Canvas,
    font: str,
    x: float,
    top: float,
    width: float,
    title: str,
    party: InvoiceParty,
    frame_colour: tuple[float, float, float],
) -> None:
    canvas.setFillColorRGB(*frame_colour)
    canvas.setFont(font, 9)
    canvas.drawString(x + 2 * MM, top - 5 * MM, title)
    canvas.drawString(x + 2 * MM, top - 11 * MM, "名称：")
    canvas.drawString(x + 2 * MM, top - 17 * MM, "统一社会信用代码/纳税人识别号：")
    canvas.setFillColorRGB(0, 0, 0)
    name_lines = wrap_text(party.name.strip(), font, 9, width - 16 * MM)
    canvas.drawString(
        x + 12 * MM, top - 11 * MM, name_lines[0] if len(name_lines) == 1 else name_lines[0] + "…"
    )
    canvas.drawString(x + 52 * MM, top - 17 * MM, party.tax_number.strip())


_COLUMNS = (
    # title, width in mm, right-aligned
    ("项目名称", 68, False),
    ("规格型号", 20, False),
    ("单位", 10, False),
    ("数量", 14, True),
    ("单价", 24, True),
    ("金额", 28, True),
    ("税率/征收率", 20, True),
    ("税额", 28, True),
)


def _draw_lines(
    canvas: Canvas,
    font: str,
    invoice: Invoice,
    left: float,
    right: float,
    top: float,
    frame_colour: tuple[float, float, float],
) -> float:
    header, row = 7 * MM, 6 * MM
    body_height = header + row * MAX_LINES + row
    canvas.setFillColorRGB(*frame_colour)
    canvas.rect(left, top - body_height, right - left, body_height)
    canvas.setFont(font, 9)
    scale = (right - left) / (sum(column[1] for column in _COLUMNS) * MM)
    positions = []
    x = left
    for title, column_width, _right_aligned in _COLUMNS:
        span = column_width * MM * scale
        positions.append((x, span))
        canvas.drawCentredString(x + span / 2, top - 5 * MM, title)
        x += span
    canvas.setFillColorRGB(0, 0, 0)
    y = top - header
    for line in invoice.lines:
        cells = (
            line.name.strip(),
            line.specification.strip(),
            line.unit.strip(),
            _plain(line.quantity),
            _money(line.unit_price_without_tax),
            _money(line.amount_without_tax),
            f"{_plain(line.tax_rate * 100)}%",
            _money(line.tax),
        )
        name_x, name_span = positions[0]
        name_lines = wrap_text(cells[0], font, 9, name_span - 2 * MM)
        if len(name_lines) == 1:
            canvas.drawString(name_x + 1.5 * MM, y - 4.5 * MM, cells[0])
        else:
            # Long item names (they carry the tax category prefix) take two smaller lines.
            canvas.setFont(font, 7)
            for index, text in enumerate(wrap_text(cells[0], font, 7, name_span - 2 * MM)[:2]):
                canvas.drawString(name_x + 1.5 * MM, y - 2.6 * MM - index * 2.6 * MM, text)
            canvas.setFont(font, 9)
        for (x, span), text, (_title, _width, right_aligned) in zip(
            positions[1:], cells[1:], _COLUMNS[1:], strict=True
        ):
            fitted = wrap_text(text, font, 9, span - 2 * MM)[0] if text else ""
            if right_aligned:
                canvas.drawRightString(x + span - 1.5 * MM, y - 4.5 * MM, fitted)
            else:
                canvas.drawString(x + 1.5 * MM, y - 4.5 * MM, fitted)
        y -= row
    totals_y = top - body_height + row
    canvas.setFillColorRGB(*frame_colour)
    canvas.drawCentredString(positions[0][0] + positions[0][1] / 2, totals_y - 4.5 * MM, "合    计")
    canvas.setFillColorRGB(0, 0, 0)
    amount_x, amount_span = positions[5]
    tax_x, tax_span = positions[7]
    canvas.drawRightString(
        amount_x + amount_span - 1.5 * MM, totals_y - 4.5 * MM, "¥" + _money(invoice.total_without_tax)
    )
    canvas.drawRightString(tax_x + tax_span - 1.5 * MM, totals_y - 4.5 * MM, "¥" + _money(invoice.total_tax))
    return top - body_height
