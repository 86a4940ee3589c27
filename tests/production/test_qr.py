from __future__ import annotations

import io

import pytest
import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from seal_platform.errors import InvalidInput
from seal_platform.production.qr import payment_qr_png

URL = "weixin://wxpay/bizpayurl?pr=AbCdEfG"


def _dark(image: Image.Image, x: int, y: int) -> bool:
    value = image.getpixel((x, y))
    assert isinstance(value, int)
    return value < 128


def _modules(png: bytes, box: int, border: int) -> list[list[bool]]:
    image = Image.open(io.BytesIO(png)).convert("L")
    count = image.width // box - 2 * border
    return [
        [
            _dark(image, (border + col) * box + box // 2, (border + row) * box + box // 2)
            for col in range(count)
        ]
        for row in range(count)
    ]


def test_png_modules_match_the_qr_encoding_of_the_url() -> None:
    png = payment_qr_png(URL, box_size=6, border=4)
    assert png.startswith(b"\x89PNG")
    reference = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    reference.add_data(URL)
    reference.make(fit=True)
    expected = [list(map(bool, row)) for row in reference.get_matrix()]
    assert _modules(png, 6, 4) == expected
    image = Image.open(io.BytesIO(png))
    assert image.width == (len(expected) + 8) * 6


def test_finder_patterns_sit_in_three_corners() -> None:
    modules = _modules(payment_qr_png("https://pay.example.test/o/SO1", box_size=4, border=2), 4, 2)
    size = len(modules)
    for top, left in ((0, 0), (0, size - 7), (size - 7, 0)):
        ring = [modules[top][left + i] for i in range(7)] + [modules[top + 6][left + i] for i in range(7)]
        assert all(ring)
        assert not modules[top + 1][left + 1]
        assert modules[top + 3][left + 3]


def test_quiet_zone_is_white() -> None:
    image = Image.open(io.BytesIO(payment_qr_png(URL, box_size=5, border=4))).convert("L")
    assert all(image.getpixel((x, 2)) == 255 for x in range(image.width))


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://x/y", "", "https://" + "a" * 2100])
def test_non_payment_links_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        payment_qr_png(url)
