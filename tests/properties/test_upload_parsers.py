"""Upload checks under hostile bytes (hypothesis, derandomised for CI).

Scans arrive from chats as arbitrary bytes. Whatever they are, the platform's check either
names the content type or refuses with ``InvalidInput`` (a clear message for the user); Pillow's
own exceptions never escape, and stored file names never carry a path or odd characters.
"""

from __future__ import annotations

import contextlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.engine.media import safe_filename
from seal_platform.documents import _safe_filename, check_upload
from seal_platform.errors import InvalidInput

FUZZ = settings(max_examples=200, derandomize=True, deadline=None)
MAX_BYTES = 64 * 1024
MAX_PIXELS = 4_000_000


def _image(kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 30, 30)).save(buffer, format=kind)
    return buffer.getvalue()


SAMPLES = [_image("PNG"), _image("JPEG"), b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"]


def _check(data: bytes) -> None:
    # InvalidInput is the one refusal allowed; any other exception fails the test.
    with contextlib.suppress(InvalidInput):
        assert check_upload(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS) in (
            "image/png",
            "image/jpeg",
            "application/pdf",
        )


@FUZZ
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes_are_typed_or_refused_clearly(data: bytes) -> None:
    _check(data)


@FUZZ
@given(
    sample=st.sampled_from(SAMPLES),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=1)),
)
def test_damaged_images_and_pdfs_are_typed_or_refused_clearly(
    sample: bytes, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(sample)
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    _check(bytes(data))


@FUZZ
@given(
    name=st.one_of(st.none(), st.text(max_size=300)), kind=st.sampled_from(["image/png", "application/pdf"])
)
def test_stored_file_names_are_plain(name: str | None, kind: str) -> None:
    stored = _safe_filename(name, kind)
    assert "/" not in stored
    assert "\\" not in stored
    assert stored.endswith(".png" if kind == "image/png" else ".pdf")
    assert len(stored) <= 84
    chat_name = safe_filename(name or "")
    assert "/" not in chat_name
    assert "\\" not in chat_name
    assert chat_name not in ("", ".", "..")
    assert len(chat_name) <= 80
