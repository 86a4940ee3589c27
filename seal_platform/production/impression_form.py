"""The seal-impression collection form (印模采集表): a printable A4 PDF.

The applicant downloads it pre-filled, prints it, stamps the company's physical official seal
and has the legal representative sign and stamp it, then scans and uploads it. Staff compare
the stamped impressions with the electronic seal they make.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from seal_platform.errors import InvalidInput
from seal_platform.production.fonts import reportlab_font_name, wrap_text
from seal_platform.production.seseal import SealKind

MM = 72 / 25.4  # points per millimetre

SEAL_KIND_LABELS = {
    SealKind.ORGANISATION: "单位电子公章",
    SealKind.PERSONAL: "法定代表人电子名章",
}

INSTRUCTIONS = (
    "1、填写：核对本表预填信息，如有错误请在平台上修改申请后重新下载；用黑色签字笔填写空白项。",
    "2、盖章：在“单位公章盖章处”加盖单位实体公章；法定代表人在签字处签名，并在名章处加盖本人名章"
    "（无名章的可按手印）。印迹须清晰、完整，不得超出方框。",
    "3、扫描：将盖章后的整页彩色扫描或正面拍照，保证四角完整、文字与印迹清晰可辨，不得涂改。",
    "4、上传：在申请流程的“上传印模采集表”一步上传扫描件（PDF、JPG 或 PNG），原件请妥善保管备查。",
)


@dataclass(frozen=True)
class ImpressionFormData:
    order_number: str
    company_name: str
    uscc: str
    legal_representative: str
    seal_kind: SealKind
    applied_on: date
    agent_name: str = ""
    agent_phone: str = ""
    platform_name: str = "sealbot 电子印章平台"


def _required(value: str, label: str) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise InvalidInput(f"the impression form needs the {label}", field=label)
    return cleaned


def render_impression_form(data: ImpressionFormData) -> bytes:
    """The pre-filled form as PDF bytes (one A4 page)."""
    fields = {
        "order_number": _required(data.order_number, "order number"),
        "company_name": _required(data.company_name, "company name"),
        "uscc": _required(data.uscc, "unified social credit code"),
        "legal_representative": _required(data.legal_representative, "legal representative"),
    }
    font = reportlab_font_name()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1)
    canvas.setTitle(f"电子印章印模采集表 {fields['order_number']}")
    canvas.setAuthor(data.platform_name)
    canvas.setSubject("印模采集表")
    width, height = A4
    left, right = 20 * MM, width - 20 * MM

    canvas.setFont(font, 20)
    canvas.drawCentredString(width / 2, height - 28 * MM, "电子印章印模采集表")
    canvas.setFont(font, 10)
    top = height - 38 * MM
    canvas.drawString(left, top, f"订单编号：{fields['order_number']}")
    canvas.drawRightString(right, top, f"申请日期：{data.applied_on:%Y年%m月%d日}")

    rows = [
        ("单位名称", fields["company_name"]),
        ("统一社会信用代码", fields["uscc"]),
        ("法定代表人", fields["legal_representative"]),
        ("申请印章类型", SEAL_KIND_LABELS[data.seal_kind]),
        ("经办人", data.agent_name.strip()),
        ("经办人联系电话", data.agent_phone.strip()),
    ]
    y = _draw_table(canvas, font, rows, left, right, top - 6 * MM)
    y = _draw_stamp_boxes(canvas, font, left, right, y - 10 * MM)

    canvas.setFont(font, 10.5)
    declaration = (
        "本单位确认上述信息真实、准确，申请制作上述电子印章，所盖印章及签名均为本单位及法定代表人"
        "真实有效的印章和签名，并承担由此产生的法律责任。"
    )
    y -= 8 * MM
    for line in wrap_text(declaration, font, 10.5, right - left):
        canvas.drawString(left, y, line)
        y -= 6 * MM

    y -= 4 * MM
    canvas.setFont(font, 12)
    canvas.drawString(left, y, "填写说明（填写、盖章、扫描、上传）")
    y -= 7 * MM
    canvas.setFont(font, 10)
    for instruction in INSTRUCTIONS:
        for index, line in enumerate(wrap_text(instruction, font, 10, right - left - 6 * MM)):
            canvas.drawString(left + (6 * MM if index else 0), y, line)
            y -= 5.5 * MM
        y -= 1 * MM

    canvas.setFont(font, 8)
    canvas.drawCentredString(
        width / 2, 12 * MM, f"{data.platform_name} · 订单 {fields['order_number']} · 本表仅用于电子印章制作"
    )
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _draw_table(
    canvas: Canvas, font: str, rows: list[tuple[str, str]], left: float, right: float, top: float
) -> float:
    label_width = 42 * MM
    row_height = 10 * MM
    y = top
    canvas.setLineWidth(0.8)
    for label, value in rows:
        canvas.rect(left, y - row_height, right - left, row_height)
        canvas.line(left + label_width, y, left + label_width, y - row_height)
        canvas.setFont(font, 10.5)
        canvas.drawString(left + 3 * MM, y - 6.5 * MM, label)
        value_lines = wrap_text(value, font, 11, right - left - label_width - 6 * MM)[:2]
        size = 11 if len(value_lines) == 1 else 9
        canvas.setFont(font, size)
        offset = 6.5 * MM if len(value_lines) == 1 else 4.2 * MM
        for line_index, line in enumerate(value_lines):
            canvas.drawString(left + label_width + 3 * MM, y - offset - line_index * 4 * MM, line)
        y -= row_height
    return y


def _draw_stamp_boxes(canvas: Canvas, font: str, left: float, right: float, top: float) -> float:
    """Three boxes side by side: company seal, legal representative signature and seal."""
    labels = ("单位公章盖章处", "法定代表人签字处", "法定代表人名章盖章处")
    gap = 6 * MM
    box_width = (right - left - 2 * gap) / 3
    box_height = 58 * MM
    canvas.setFont(font, 10.5)
    for index, label in enumerate(labels):
        x = left + index * (box_width + gap)
        canvas.drawCentredString(x + box_width / 2, top, label)
        canvas.setDash(4, 2)
        canvas.rect(x, top - 4 * MM - box_height, box_width, box_height)
        canvas.setDash()
    canvas.setFont(font, 9)
    canvas.drawString(left, top - 10 * MM - box_height, "日期：        年    月    日")
    return top - 10 * MM - box_height
