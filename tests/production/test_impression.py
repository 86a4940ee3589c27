from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from PIL import Image

from seal_platform.errors import InvalidInput
from seal_platform.production.impression import (
    INK_RED,
    draw_enterprise_seal,
    draw_personal_seal,
    is_valid_seal_code,
    mm_to_px,
    personal_seal_columns,
    personal_seal_text,
    seal_code,
    seal_code_check_digit,
)

COMPANY = "广州瑞术科技有限公司"
CODE = seal_code("440106", 1234)


def _image(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.mode == "RGBA"
    return image


def _alpha(image: Image.Image, xy: tuple[int, int]) -> int:
    pixel = image.getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel[3]


def _visible_colours(image: Image.Image) -> set[tuple[int, ...]]:
    colours = image.getcolors(image.width * image.height)
    assert colours is not None
    return {pixel[:3] for _count, pixel in colours if isinstance(pixel, tuple) and pixel[3] > 0}


def _ink_fraction(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    alpha = image.crop(box).getchannel("A")
    histogram = alpha.histogram()
    return sum(histogram[128:]) / (alpha.width * alpha.height)


@pytest.mark.parametrize(
    ("name", "dpi", "diameter_mm", "expected_px"),
    [
        (COMPANY, 300, 40, 472),
        ("深圳某某股份有限公司", 300, 42, 496),
        (COMPANY, 600, 40, 945),
    ],
)
def test_enterprise_seal_size_matches_millimetres_at_dpi(
    name: str, dpi: int, diameter_mm: int, expected_px: int
) -> None:
    impression = draw_enterprise_seal(name, CODE, dpi=dpi)
    image = _image(impression.png)
    assert image.size == (expected_px, expected_px)
    assert (impression.width_mm, impression.height_mm) == (diameter_mm, diameter_mm)
    assert (impression.width_px, impression.height_px, impression.dpi) == (expected_px, expected_px, dpi)
    assert expected_px == mm_to_px(diameter_mm, dpi)
    assert round(image.info["dpi"][0]) == dpi


def test_enterprise_seal_is_red_ink_on_transparency(tmp_path: Path) -> None:
    impression = draw_enterprise_seal(COMPANY, CODE)
    (tmp_path / "enterprise-seal.png").write_bytes(impression.png)
    image = _image(impression.png)
    size = image.width
    for corner in ((0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)):
        assert _alpha(image, corner) == 0
    # Every visible pixel is the ink colour: only its opacity varies.
    assert _visible_colours(image) == {INK_RED}
    red, green, blue = INK_RED
    assert red > 200
    assert green < 40
    assert blue < 40


def test_enterprise_seal_has_star_ring_name_and_code() -> None:
    image = _image(draw_enterprise_seal(COMPANY, CODE).png)
    size = image.width
    centre = size // 2
    # The star fills the centre and its top point; between its arms there is no ink.
    assert _alpha(image, (centre, centre)) == 255
    star_radius = size * 0.175
    assert _alpha(image, (centre, round(centre - star_radius * 0.9))) > 128
    assert _alpha(image, (round(centre + star_radius * 0.9), round(centre - star_radius * 0.5))) < 64
    # The ring: opaque on the edge all around.
    for angle in range(0, 360, 15):
        x = round(centre + (size / 2 - 4) * math.cos(math.radians(angle)))
        y = round(centre - (size / 2 - 4) * math.sin(math.radians(angle)))
        assert _alpha(image, (x, y)) > 200, angle
    # Name characters along the top band, code digits along the bottom band.
    band = round(size * 0.2)
    assert _ink_fraction(image, (round(size * 0.3), 8, round(size * 0.7), band)) > 0.1
    assert _ink_fraction(image, (round(size * 0.3), size - band, round(size * 0.7), size - 8)) > 0.03


def test_different_names_give_different_impressions() -> None:
    first = draw_enterprise_seal(COMPANY, CODE).png
    second = draw_enterprise_seal("广州瑞木科技有限公司", CODE).png
    other_code = draw_enterprise_seal(COMPANY, seal_code("440106", 1235)).png
    assert len({first, second, other_code}) == 3


def test_long_names_stay_inside_the_ring() -> None:
    name = "中国石油天然气股份有限公司广东销售分公司第一加油站"
    image = _image(draw_enterprise_seal(name, CODE).png)
    assert image.width == mm_to_px(42, 300)
    # Nothing drawn outside the ring's circle.
    size = image.width
    for x, y in ((size // 10, size // 10), (size - size // 10, size // 10)):
        assert _alpha(image, (x, y)) == 0


def test_special_purpose_seal_has_horizontal_text_under_the_star() -> None:
    plain = _image(draw_enterprise_seal(COMPANY, CODE).png)
    contract = _image(draw_enterprise_seal(COMPANY, CODE, horizontal_text="合同专用章").png)
    size = plain.width
    box = (round(size * 0.3), round(size * 0.7), round(size * 0.7), round(size * 0.8))
    assert _ink_fraction(plain, box) < 0.02
    assert _ink_fraction(contract, box) > 0.1


@pytest.mark.parametrize(
    ("name", "text", "columns"),
    [
        ("张三", "张三之印", ["张三", "之印"]),
        ("李小龙", "李小龙印", ["李小", "龙印"]),
        ("欧阳建国", "欧阳建国", ["欧阳", "建国"]),
        ("爱新觉罗溥仪", "爱新觉罗溥仪印", ["爱新觉", "罗溥", "仪印"]),
    ],
)
def test_personal_seal_text_and_reading_order(name: str, text: str, columns: list[str]) -> None:
    assert personal_seal_text(name) == text
    assert personal_seal_columns(text) == columns


def test_personal_seal_is_a_bordered_red_square(tmp_path: Path) -> None:
    impression = draw_personal_seal("张三")
    (tmp_path / "personal-seal.png").write_bytes(impression.png)
    image = _image(impression.png)
    assert image.size == (mm_to_px(20, 300), mm_to_px(20, 300))
    assert (impression.width_mm, impression.height_mm) == (20, 20)
    size = image.width
    for point in ((2, 2), (size - 3, size // 2), (size // 2, size - 3)):
        assert _alpha(image, point) == 255
    assert _visible_colours(image) == {INK_RED}
    # Four characters: ink in each quadrant of the inside.
    quarter = size // 4
    for cx in (quarter, 3 * quarter):
        for cy in (quarter, 3 * quarter):
            box = (cx - quarter // 2, cy - quarter // 2, cx + quarter // 2, cy + quarter // 2)
            assert _ink_fraction(image, box) > 0.1


def test_seal_code_has_area_sequence_and_check_digit() -> None:
    assert CODE[:12] == "440106001234"
    assert len(CODE) == 13
    assert is_valid_seal_code(CODE)
    assert CODE[12] == seal_code_check_digit("440106001234")


def test_seal_code_check_digit_catches_single_digit_errors_and_swaps() -> None:
    code = seal_code("110105", 987654)
    for position in range(13):
        for digit in "0123456789":
            if digit != code[position]:
                assert not is_valid_seal_code(code[:position] + digit + code[position + 1 :])
    for position in range(12):
        if code[position] != code[position + 1]:
            swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
            assert not is_valid_seal_code(swapped)


@pytest.mark.parametrize(
    ("area", "sequence"), [("040106", 1), ("44010", 1), ("440106", -1), ("440106", 10**6)]
)
def test_bad_seal_code_parts_are_refused(area: str, sequence: int) -> None:
    with pytest.raises(InvalidInput):
        seal_code(area, sequence)


@pytest.mark.parametrize(
    "call",
    [
        lambda: draw_enterprise_seal("", CODE),
        lambda: draw_enterprise_seal("有 空格", CODE),
        lambda: draw_enterprise_seal(COMPANY, "123"),
        lambda: draw_enterprise_seal(COMPANY, CODE, dpi=20),
        lambda: draw_personal_seal(""),
        lambda: draw_personal_seal("张三", side_mm=5),
    ],
)
def test_bad_impression_input_is_refused(call: object) -> None:
    with pytest.raises(InvalidInput):
        call()  # type: ignore[operator]
