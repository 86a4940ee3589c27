"""Finding a CJK font that Pillow (seal impressions) and reportlab (PDF forms, invoices) can use.

The two consumers differ: Pillow (FreeType) reads any OpenType font, reportlab embeds only
TrueType outlines and refuses the CFF-based Noto CJK collections. So each consumer searches the
same list (the ``PLATFORM_CJK_FONT`` path first, then the Debian font paths) and keeps the
first face that it can load *and* that has Chinese glyphs. A configured font that one consumer
cannot use is skipped with a warning rather than breaking the other.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

logger = logging.getLogger(__name__)

FONT_ENV_VAR = "PLATFORM_CJK_FONT"
DEBIAN_FONT_PACKAGE = "fonts-arphic-uming"
# A character every usable face must contain: the one on every personal seal.
_PROBE_CHARACTER = "印"


@dataclass(frozen=True)
class FontFace:
    """One face of a font file; ``index`` selects the face inside a .ttc collection."""

    path: Path
    index: int = 0

    def describe(self) -> str:
        return f"{self.path}#{self.index}"


# Noto CJK collections order their faces JP, KR, SC, TC, HK: index 2 is Simplified Chinese.
# A bold serif (宋体-like) face is closest to the carved look of a seal, so it leads for images.
_IMPRESSION_CANDIDATES = (
    FontFace(Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc"), 2),
    FontFace(Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"), 2),
    FontFace(Path("/usr/share/fonts/truetype/arphic/uming.ttc"), 0),
    FontFace(Path("/usr/share/fonts/truetype/arphic/ukai.ttc"), 0),
    FontFace(Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"), 2),
    FontFace(Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),
)
# reportlab needs TrueType outlines: only the AR PL fonts qualify among the Debian packages.
_DOCUMENT_CANDIDATES = (
    FontFace(Path("/usr/share/fonts/truetype/arphic/uming.ttc"), 0),
    FontFace(Path("/usr/share/fonts/truetype/arphic/ukai.ttc"), 0),
)


class CjkFontNotFound(RuntimeError):
    """No usable CJK font is installed: a deployment problem, not a caller's mistake."""


def parse_font_setting(value: str) -> FontFace:
    """``/path/font.ttc`` or ``/path/font.ttc#2`` (the face index inside a collection)."""
    path_text, separator, index_text = value.strip().rpartition("#")
    if separator and index_text.isdigit():
        return FontFace(Path(path_text), int(index_text))
    return FontFace(Path(value.strip()), 0)


def _configured_face(environ: Mapping[str, str]) -> FontFace | None:
    value = environ.get(FONT_ENV_VAR, "").strip()
    return parse_font_setting(value) if value else None


def pillow_can_use(face: FontFace) -> bool:
    try:
        font = ImageFont.truetype(str(face.path), 32, index=face.index)
    except OSError:
        return False
    return font.getmask(_PROBE_CHARACTER).getbbox() is not None


def reportlab_can_use(face: FontFace) -> bool:
    try:
        font = TTFont("probe", str(face.path), subfontIndex=face.index)
    except (TTFError, OSError):
        return False
    return ord(_PROBE_CHARACTER) in font.face.charToGlyph


def search_font_face(
    consumer: str,
    configured: FontFace | None,
    candidates: tuple[FontFace, ...],
    usable: Callable[[FontFace], bool],
) -> FontFace:
    """The configured face if ``usable``, else the first usable candidate."""
    tried: list[str] = []
    ordered = ((configured,) if configured else ()) + candidates
    for face in ordered:
        if not face.path.is_file():
            tried.append(f"{face.describe()} (missing)")
            if face is configured:
                logger.warning("%s=%s does not exist; searching the system fonts", FONT_ENV_VAR, face.path)
            continue
        if usable(face):
            return face
        tried.append(f"{face.describe()} (not usable by {consumer})")
        if face is configured:
            logger.warning(
                "%s=%s is not usable by %s; searching the system fonts",
                FONT_ENV_VAR,
                face.describe(),
                consumer,
            )
    raise CjkFontNotFound(
        f"no CJK font usable by {consumer}: install the Debian package {DEBIAN_FONT_PACKAGE} "
        f"(apt-get install {DEBIAN_FONT_PACKAGE}) or set {FONT_ENV_VAR} to a TrueType CJK font. "
        f"Tried: {', '.join(tried)}"
    )


@lru_cache(maxsize=8)
def _impression_face_for(configured: FontFace | None) -> FontFace:
    return search_font_face("Pillow", configured, _IMPRESSION_CANDIDATES, pillow_can_use)


@lru_cache(maxsize=8)
def _document_face_for(configured: FontFace | None) -> FontFace:
    return search_font_face("reportlab", configured, _DOCUMENT_CANDIDATES, reportlab_can_use)


def impression_font_face(environ: Mapping[str, str] | None = None) -> FontFace:
    """The face for drawing seal impressions with Pillow."""
    return _impression_face_for(_configured_face(os.environ if environ is None else environ))


def document_font_face(environ: Mapping[str, str] | None = None) -> FontFace:
    """The face reportlab embeds in PDFs (TrueType outlines only)."""
    return _document_face_for(_configured_face(os.environ if environ is None else environ))


@lru_cache(maxsize=64)
def _pillow_font(face: FontFace, size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(face.path), size_px, index=face.index)


def pillow_font(size_px: int, environ: Mapping[str, str] | None = None) -> ImageFont.FreeTypeFont:
    """A loaded Pillow font of ``size_px`` pixels; loaded once per face and size."""
    return _pillow_font(impression_font_face(environ), size_px)


@lru_cache(maxsize=8)
def _registered_reportlab_font(face: FontFace) -> str:
    name = f"SealbotCJK-{face.path.stem}-{face.index}"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(face.path), subfontIndex=face.index))
    return name


def reportlab_font_name(environ: Mapping[str, str] | None = None) -> str:
    """The name of a registered reportlab font with Chinese glyphs (registered once)."""
    return _registered_reportlab_font(document_font_face(environ))


_NO_LINE_START = frozenset("，。、；：？！）》」』”’%,.;:?!)")


def wrap_text(text: str, font_name: str, font_size: float, max_width: float) -> list[str]:
    """Break ``text`` into lines no wider than ``max_width`` points.

    Chinese has no spaces to break at, so this breaks between any two characters, keeping
    explicit newlines; a run of Latin letters or digits is kept whole when it fits a line.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for token in _tokens(paragraph):
            candidate = line + token
            # Closing punctuation never starts a line (禁则): it may overhang the margin.
            if token in _NO_LINE_START:
                line = candidate
                continue
            if line and pdfmetrics.stringWidth(candidate, font_name, font_size) > max_width:
                lines.append(line.rstrip())
                line = token.lstrip()
            else:
                line = candidate
            while pdfmetrics.stringWidth(line, font_name, font_size) > max_width and len(line) > 1:
                cut = len(line) - 1
                while cut > 1 and pdfmetrics.stringWidth(line[:cut], font_name, font_size) > max_width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for character in text:
        is_word_character = character.isascii() and character.isalnum()
        if is_word_character and tokens and tokens[-1].isascii() and tokens[-1][-1].isalnum():
            tokens[-1] += character
        else:
            tokens.append(character)
    return tokens
