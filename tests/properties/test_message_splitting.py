"""Long replies split for the channels' limits lose nothing and keep every part within the limit."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.telegram.render import split_text, utf16_len
from bot.channels.wechat.render import split_bytes

FUZZ = settings(max_examples=300, derandomize=True, deadline=None)
# Chinese prose, ASCII, line breaks, sentence ends and characters outside the BMP (emoji),
# which count as two UTF-16 units for Telegram and four bytes for WeChat.
alphabet = st.sampled_from([*"印章办理续期注销ABCxyz0189 \n。.", "😀", "𠀀", "\n\n"])
texts = st.lists(alphabet, max_size=600).map("".join)


def _content(text: str) -> str:
    """What a reader must get, whatever whitespace the split trims at its cut points."""
    return re.sub(r"\s+", "", text)


@FUZZ
@given(text=texts, limit=st.integers(min_value=8, max_value=200))
def test_telegram_parts_fit_in_utf16_units_and_keep_the_text(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(utf16_len(part) <= limit for part in parts)
    assert _content("".join(parts)) == _content(text)
    assert len(parts) == 1 or all(part.strip() for part in parts)


@FUZZ
@given(text=texts, limit=st.integers(min_value=8, max_value=200))
def test_wechat_parts_fit_in_utf8_bytes_and_keep_the_text(text: str, limit: int) -> None:
    parts = split_bytes(text, limit)
    assert all(len(part.encode()) <= limit for part in parts)
    assert _content("".join(parts)) == _content(text)
