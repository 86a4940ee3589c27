from __future__ import annotations

import logging
from pathlib import Path

import pytest
from reportlab.pdfbase import pdfmetrics

from seal_platform.production.fonts import (
    FONT_ENV_VAR,
    CjkFontNotFound,
    FontFace,
    document_font_face,
    impression_font_face,
    parse_font_setting,
    pillow_can_use,
    pillow_font,
    reportlab_can_use,
    reportlab_font_name,
    search_font_face,
    wrap_text,
)
from tests.tools import missing_tool

UMING = Path("/usr/share/fonts/truetype/arphic/uming.ttc")
NOTO_SERIF_BOLD = Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc")


@pytest.fixture
def uming() -> None:
    if not UMING.is_file():
        missing_tool("needs Debian fonts-arphic-uming")


@pytest.fixture
def noto() -> None:
    if not NOTO_SERIF_BOLD.is_file():
        missing_tool("needs Debian fonts-noto-cjk")


needs_uming = pytest.mark.usefixtures("uming")
needs_noto = pytest.mark.usefixtures("noto")


def test_font_setting_may_name_a_face_in_a_collection() -> None:
    assert parse_font_setting("/fonts/a.ttc#2") == FontFace(Path("/fonts/a.ttc"), 2)
    assert parse_font_setting(" /fonts/b.ttf ") == FontFace(Path("/fonts/b.ttf"), 0)
    assert parse_font_setting("/fonts/c#d.ttf") == FontFace(Path("/fonts/c#d.ttf"), 0)


@needs_uming
def test_configured_font_comes_first() -> None:
    environ = {FONT_ENV_VAR: f"{UMING}#0"}
    assert impression_font_face(environ) == FontFace(UMING, 0)
    assert pillow_font(40, environ).getname()[0] == "AR PL UMing CN"


@needs_uming
@needs_noto
def test_reportlab_skips_a_cff_font_and_uses_a_truetype_one(caplog: pytest.LogCaptureFixture) -> None:
    environ = {FONT_ENV_VAR: f"{NOTO_SERIF_BOLD}#2"}
    assert pillow_can_use(FontFace(NOTO_SERIF_BOLD, 2))
    assert not reportlab_can_use(FontFace(NOTO_SERIF_BOLD, 2))
    with caplog.at_level(logging.WARNING):
        face = search_font_face(
            "reportlab", FontFace(NOTO_SERIF_BOLD, 2), (FontFace(UMING, 0),), reportlab_can_use
        )
    assert face == FontFace(UMING, 0)
    assert "not usable by reportlab" in caplog.text
    # Pillow takes the configured Noto face as is.
    assert impression_font_face(environ) == FontFace(NOTO_SERIF_BOLD, 2)
    assert document_font_face(environ) == FontFace(UMING, 0)


def test_missing_configured_font_falls_back_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fallback = impression_font_face({})
    with caplog.at_level(logging.WARNING):
        face = search_font_face("Pillow", FontFace(tmp_path / "missing.ttf"), (fallback,), pillow_can_use)
    assert face == fallback
    assert "does not exist" in caplog.text


def test_no_usable_font_names_the_debian_package(tmp_path: Path) -> None:
    not_a_font = tmp_path / "not-a-font.ttf"
    not_a_font.write_bytes(b"\x00" * 64)
    with pytest.raises(CjkFontNotFound, match="fonts-arphic-uming") as raised:
        search_font_face(
            "reportlab", None, (FontFace(tmp_path / "gone.ttc"), FontFace(not_a_font)), reportlab_can_use
        )
    assert "gone.ttc#0 (missing)" in str(raised.value)
    assert "not-a-font.ttf#0 (not usable by reportlab)" in str(raised.value)


@needs_uming
def test_reportlab_font_is_registered_once() -> None:
    name = reportlab_font_name({})
    assert reportlab_font_name({}) == name
    assert name in pdfmetrics.getRegisteredFontNames()


@needs_uming
def test_wrapped_lines_fit_and_keep_words_and_punctuation() -> None:
    font = reportlab_font_name({})
    text = "请打印本表，用黑色签字笔填写 ABCDEFG 12345 各项内容，字迹清楚。\n第二段"
    lines = wrap_text(text, font, 10, 120)
    assert "".join(lines).replace(" ", "") == text.replace("\n", "").replace(" ", "")
    assert lines[-1] == "第二段"
    for line in lines:
        assert not line.startswith(("，", "。"))
        # Only closing punctuation may hang over the margin.
        assert pdfmetrics.stringWidth(line.rstrip("，。"), font, 10) <= 120
    assert any("ABCDEFG" in line for line in lines)
