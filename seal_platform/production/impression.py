"""Seal impressions (印模) drawn with Pillow: transparent PNGs in red ink.

Enterprise seal: a ring 40 mm across (42 mm for a joint-stock company, 股份有限公司), a
five-pointed star in the centre, the company name along the upper arc running clockwise with
each character's top facing outward, the 13-digit seal code along the lower arc reading left to
right. Personal (legal representative) seal: a bordered square with the name in a grid, read
in the traditional order (right column first, top to bottom).

Everything is drawn as a coverage mask at a multiple of the target resolution and reduced with
a Lanczos filter, then used as the alpha of a solid ink layer: every visible pixel is exactly
the ink colour and only its opacity varies at the edges.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

from PIL import Image, ImageDraw

from seal_platform.errors import InvalidInput
from seal_platform.production.fonts import pillow_font

INK_RED = (230, 0, 18)  # #E60012, the usual seal-ink red
DEFAULT_DPI = 300
MM_PER_INCH = 25.4
LIMITED_COMPANY_DIAMETER_MM = 40
JOINT_STOCK_COMPANY_DIAMETER_MM = 42
PERSONAL_SEAL_SIDE_MM = 20

# Proportions of the enterprise seal, as fractions of the diameter (from a 40 mm seal: 1.2 mm
# ring, 14 mm star, 6.6 mm name characters, 2.8 mm code digits).
_RING_WIDTH = 0.03
_RING_GAP = 0.02
_STAR_RADIUS = 0.175
_NAME_HEIGHT = 0.165
_CODE_HEIGHT = 0.07
_HORIZONTAL_TEXT_HEIGHT = 0.09
# The name never runs further round than this, centred on the top; longer names get narrower
# characters, as a seal engraver would cut them.
_NAME_MAX_SPAN_DEGREES = 240.0
_NAME_MIN_WIDTH_RATIO = 0.4
_SUPERSAMPLED_MAX_PX = 2400

_SEAL_CODE_FORMAT = re.compile(r"^\d{13}$")
_NAME_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SealImpression:
    """A rendered impression: the PNG and its physical size (what SESeal's picture records)."""

    png: bytes
    width_mm: int
    height_mm: int
    width_px: int
    height_px: int
    dpi: int


def mm_to_px(mm: float, dpi: int) -> int:
    return round(mm / MM_PER_INCH * dpi)


def enterprise_seal_diameter_mm(company_name: str) -> int:
    """42 mm for a joint-stock company (its name contains 股份), 40 mm otherwise."""
    return JOINT_STOCK_COMPANY_DIAMETER_MM if "股份" in company_name else LIMITED_COMPANY_DIAMETER_MM


# -- seal codes ---------------------------------------------------------------------------


def seal_code_check_digit(first_twelve: str) -> str:
    """ISO 7064 MOD 11,10 (a hybrid system yielding one decimal digit): it catches every
    single-digit error and most adjacent transpositions."""
    if not re.fullmatch(r"\d{12}", first_twelve):
        raise InvalidInput("a seal code check digit is computed over 12 digits", value=first_twelve)
    product = 10
    for character in first_twelve:
        total = (product + int(character)) % 10 or 10
        product = (total * 2) % 11
    return str((11 - product) % 10)


def seal_code(area_code: str, sequence: int) -> str:
    """The 13-digit seal code: a 6-digit administrative area code (GB/T 2260, e.g. 440106),
    a 6-digit sequence number within the area, and an ISO 7064 MOD 11,10 check digit."""
    if not re.fullmatch(r"[1-8]\d{5}", area_code):
        raise InvalidInput("the area code must be 6 digits starting with 1 to 8", area_code=area_code)
    if not 0 <= sequence <= 999_999:
        raise InvalidInput("the seal sequence number must be 0 to 999999", sequence=sequence)
    first_twelve = f"{area_code}{sequence:06d}"
    return first_twelve + seal_code_check_digit(first_twelve)


def is_valid_seal_code(code: str) -> bool:
    return bool(_SEAL_CODE_FORMAT.match(code)) and seal_code_check_digit(code[:12]) == code[12]


# -- drawing helpers ----------------------------------------------------------------------


def _check_dpi(dpi: int) -> None:
    if not 72 <= dpi <= 1200:
        raise InvalidInput("the resolution must be 72 to 1200 dpi", dpi=dpi)


def _supersampling(size_px: int) -> int:
    return max(1, min(4, _SUPERSAMPLED_MAX_PX // size_px))


def _glyph_tile(character: str, height_px: int, width_px: int) -> Image.Image:
    """One character as a coverage mask, its em box scaled to ``width_px`` x ``height_px``."""
    size = max(2, height_px)
    font = pillow_font(size)
    tile = Image.new("L", (size, size), 0)
    # Anchor "mm" centres the em box: CJK ideographs sit centred in it, so characters of
    # different shapes stay on one baseline circle.
    ImageDraw.Draw(tile).text((size / 2, size / 2), character, font=font, fill=255, anchor="mm")
    if width_px != size:
        tile = tile.resize((max(1, width_px), size), Image.Resampling.LANCZOS)
    return tile


def _stamp(mask: Image.Image, tile: Image.Image, centre_x: float, centre_y: float) -> None:
    left = round(centre_x - tile.width / 2)
    top = round(centre_y - tile.height / 2)
    mask.paste(255, (left, top), tile)


def _place_on_circle(
    mask: Image.Image, tile: Image.Image, centre: float, radius: float, angle_degrees: float, outward: bool
) -> None:
    """Put ``tile`` on the circle at ``angle_degrees`` (mathematical: 0 = right, 90 = top),
    turned so that its top points away from the centre (``outward``) or towards it."""
    angle = math.radians(angle_degrees)
    x = centre + radius * math.cos(angle)
    y = centre - radius * math.sin(angle)
    # An upright glyph's top points at 90 degrees; Image.rotate turns counter-clockwise.
    turn = angle_degrees - 90 if outward else angle_degrees + 90
    rotated = tile.rotate(turn, resample=Image.Resampling.BICUBIC, expand=True)
    _stamp(mask, rotated, x, y)


def _star_points(cx: float, cy: float, outer: float) -> list[tuple[float, float]]:
    # The inner radius of a regular five-pointed star is outer * sin(18°) / sin(126°).
    inner = outer * math.sin(math.radians(18)) / math.sin(math.radians(126))
    points = []
    for index in range(10):
        radius = outer if index % 2 == 0 else inner
        angle = math.radians(90 + index * 36)
        points.append((cx + radius * math.cos(angle), cy - radius * math.sin(angle)))
    return points


def _to_png(mask: Image.Image, size_px: tuple[int, int], dpi: int, ink: tuple[int, int, int]) -> bytes:
    alpha = mask.resize(size_px, Image.Resampling.LANCZOS) if mask.size != size_px else mask
    image = Image.new("RGBA", size_px, (*ink, 0))
    image.putalpha(alpha)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi), optimize=True)
    return buffer.getvalue()


# What fits on an impression: the limits the drawing enforces, and the order rules check before
# payment (seal_platform.order_rules.check_names_printable), so both sides apply one rule.
ENTERPRISE_NAME_MAX = 40
PERSONAL_NAME_MAX = 16


def printable_on_seal(value: str, max_length: int) -> bool:
    text = value.strip()
    return bool(text) and len(text) <= max_length and not _NAME_FORBIDDEN.search(text)


def _clean_text(value: str, what: str, max_length: int) -> str:
    text = value.strip()
    if not text or len(text) > max_length or _NAME_FORBIDDEN.search(text):
        raise InvalidInput(f"{what} must be 1 to {max_length} characters without spaces", field=what)
    return text


# -- enterprise seal ----------------------------------------------------------------------


def draw_enterprise_seal(
    company_name: str,
    code: str,
    *,
    dpi: int = DEFAULT_DPI,
    horizontal_text: str | None = None,
    ink: tuple[int, int, int] = INK_RED,
) -> SealImpression:
    """The round company seal. ``horizontal_text`` is for special-purpose seals (合同专用章);
    the official seal (公章) has none."""
    _check_dpi(dpi)
    name = _clean_text(company_name, "company name", ENTERPRISE_NAME_MAX)
    if not _SEAL_CODE_FORMAT.match(code):
        raise InvalidInput("the seal code must be 13 digits", seal_code=code)
    diameter_mm = enterprise_seal_diameter_mm(name)
    size_px = mm_to_px(diameter_mm, dpi)
    scale = _supersampling(size_px)
    side = size_px * scale
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    centre = side / 2
    radius = side / 2

    ring = max(1, round(side * _RING_WIDTH))
    draw.ellipse((0, 0, side - 1, side - 1), outline=255, width=ring)
    draw.polygon(_star_points(centre, centre, side * _STAR_RADIUS), fill=255)

    _draw_name_arc(mask, name, centre, radius - ring - side * _RING_GAP, side)
    _draw_code_arc(mask, code, centre, radius - ring - side * _RING_GAP, side)
    if horizontal_text:
        _draw_horizontal_line(mask, _clean_text(horizontal_text, "horizontal text", 12), centre, side)
    return SealImpression(
        png=_to_png(mask, (size_px, size_px), dpi, ink),
        width_mm=diameter_mm,
        height_mm=diameter_mm,
        width_px=size_px,
        height_px=size_px,
        dpi=dpi,
    )


def _draw_name_arc(mask: Image.Image, name: str, centre: float, outer_radius: float, side: int) -> None:
    height = side * _NAME_HEIGHT
    text_radius = outer_radius - height / 2
    nominal_pitch = math.degrees(height / text_radius)
    count = len(name)
    if count == 1:
        pitch = 0.0
        width = height
    elif nominal_pitch * count <= _NAME_MAX_SPAN_DEGREES:
        pitch, width = nominal_pitch, height
    else:
        pitch = _NAME_MAX_SPAN_DEGREES / count
        width = math.radians(pitch) * text_radius * 0.95
        if width < height * _NAME_MIN_WIDTH_RATIO:
            # Very long names: keep the characters' proportions legible by shrinking them too.
            height = width / _NAME_MIN_WIDTH_RATIO
            text_radius = outer_radius - height / 2
            pitch = _NAME_MAX_SPAN_DEGREES / count
            width = math.radians(pitch) * text_radius * 0.95
    first = 90 + pitch * (count - 1) / 2
    for index, character in enumerate(name):
        tile = _glyph_tile(character, round(height), round(width))
        # Clockwise from the left: the angle decreases from ``first`` through 90 (the top).
        _place_on_circle(mask, tile, centre, text_radius, first - index * pitch, outward=True)


def _draw_code_arc(mask: Image.Image, code: str, centre: float, outer_radius: float, side: int) -> None:
    height = side * _CODE_HEIGHT
    width = height * 0.62
    text_radius = outer_radius - height / 2
    pitch = math.degrees(width * 1.15 / text_radius)
    first = 270 - pitch * (len(code) - 1) / 2
    for index, digit in enumerate(code):
        tile = _glyph_tile(digit, round(height), round(width))
        # Left to right along the bottom is counter-clockwise; the digits stand upright,
        # their tops towards the centre, so they read like a line of text.
        _place_on_circle(mask, tile, centre, text_radius, first + index * pitch, outward=False)


def _draw_horizontal_line(mask: Image.Image, text: str, centre: float, side: int) -> None:
    height = side * _HORIZONTAL_TEXT_HEIGHT
    available = side * 0.5
    width = min(height, available / len(text))
    baseline_y = centre + side * 0.25
    start_x = centre - width * (len(text) - 1) / 2
    for index, character in enumerate(text):
        _stamp(mask, _glyph_tile(character, round(height), round(width)), start_x + index * width, baseline_y)


# -- personal seal ------------------------------------------------------------------------


def personal_seal_text(name: str) -> str:
    """The characters cut into a personal seal: two-character names become 「X X 之印」,
    three-character names get 印, four characters stay as they are, longer names get 印."""
    cleaned = _clean_text(name, "name", PERSONAL_NAME_MAX)
    if len(cleaned) <= 2:
        return cleaned + "之印"
    if len(cleaned) == 3:
        return cleaned + "印"
    if len(cleaned) == 4:
        return cleaned
    return cleaned + "印"


def personal_seal_columns(text: str) -> list[str]:
    """Split the seal text into columns, right column first, each read top to bottom.

    Four characters make the classic 2 x 2 grid; longer texts use ceil(sqrt(n)) columns with
    the extra characters in the right-hand (first-read) columns.
    """
    columns = max(2, math.ceil(math.sqrt(len(text))))
    base, extra = divmod(len(text), columns)
    result = []
    position = 0
    for index in range(columns):
        length = base + (1 if index < extra else 0)
        result.append(text[position : position + length])
        position += length
    return [column for column in result if column]


def draw_personal_seal(
    name: str,
    *,
    dpi: int = DEFAULT_DPI,
    side_mm: int = PERSONAL_SEAL_SIDE_MM,
    ink: tuple[int, int, int] = INK_RED,
) -> SealImpression:
    """The square legal-representative seal: a border and the name grid in red."""
    _check_dpi(dpi)
    if not 10 <= side_mm <= 40:
        raise InvalidInput("a personal seal is 10 to 40 mm wide", side_mm=side_mm)
    columns = personal_seal_columns(personal_seal_text(name))
    size_px = mm_to_px(side_mm, dpi)
    scale = _supersampling(size_px)
    side = size_px * scale
    mask = Image.new("L", (side, side), 0)
    border = max(1, round(side * 0.06))
    ImageDraw.Draw(mask).rectangle((0, 0, side - 1, side - 1), outline=255, width=border)

    inset = border + side * 0.04
    inner = side - 2 * inset
    column_width = inner / len(columns)
    for column_index, column in enumerate(columns):
        # Columns are read from the right.
        column_centre_x = side - inset - column_width * (column_index + 0.5)
        cell_height = inner / len(column)
        for row_index, character in enumerate(column):
            tile = _glyph_tile(character, round(cell_height * 0.96), round(column_width * 0.96))
            _stamp(mask, tile, column_centre_x, inset + cell_height * (row_index + 0.5))
    return SealImpression(
        png=_to_png(mask, (size_px, size_px), dpi, ink),
        width_mm=side_mm,
        height_mm=side_mm,
        width_px=size_px,
        height_px=size_px,
        dpi=dpi,
    )
