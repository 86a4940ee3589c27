"""The one rule set for personal numbers in free text: resident ID numbers, bank card numbers,
mobile numbers and six-digit one-time codes.

The bot's redaction before storage (``bot.redaction``), its display masks
(``bot.engine.secrets_box.mask_text``) and the JSON logs (``observability.logs``) all find the
numbers with ``replace_personal_numbers``; each says how a found number is written (a marker, a
partial mask) and may keep one (a card number that fails the Luhn check is not a card for
redaction, while a log masks it anyway). Neither the bot nor the platform is imported here.

Found left to right, the longest kind first at each position: an 18-character ID number holds
digit runs that the card, mobile and code rules would also take.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from enum import StrEnum


class Kind(StrEnum):
    ID_NUMBER = "id_number"
    CARD = "card"
    MOBILE = "mobile"
    CODE = "code"


# GB 11643: 6-digit area, birth year 18xx-20xx, the rest, a check character (digit or X).
_RULES = (
    (Kind.ID_NUMBER, r"(?<![0-9A-Za-z])\d{6}(?:18|19|20)\d{9}[0-9Xx](?![0-9A-Za-z])"),
    # 16-19 digits, optionally grouped by single spaces or hyphens as cards are printed.
    (Kind.CARD, r"(?<![0-9A-Za-z])\d(?:[ -]?\d){15,18}(?![0-9A-Za-z])"),
    (Kind.MOBILE, r"(?<!\d)1[3-9]\d{9}(?!\d)"),
    (Kind.CODE, r"(?<!\d)\d{6}(?!\d)"),
)
_FOUND = re.compile("|".join(f"(?P<{kind.value}>{rule})" for kind, rule in _RULES))
# What every kind above holds somewhere: six digits, consecutive or (a card's) grouped by single
# spaces or hyphens. A text without it has no personal number; this finds that out in a third
# of the time the rules above take to (most messages, and most log lines, have none).
_SIX_DIGITS = re.compile(r"\d(?:[ -]?\d){5}")

ALL_KINDS = frozenset(Kind)


def replace_personal_numbers(
    text: str,
    write: Callable[[Kind, str], str | None],
    kinds: Collection[Kind] = ALL_KINDS,
) -> str:
    """``text`` with each personal number of ``kinds`` replaced by ``write(kind, number)``
    (``None`` keeps the number as it is)."""
    if not _SIX_DIGITS.search(text):
        return text

    def replace(match: re.Match[str]) -> str:
        kind = Kind(match.lastgroup or "")
        found = match.group(0)
        if kind not in kinds:
            return found
        written = write(kind, found)
        return found if written is None else written

    return _FOUND.sub(replace, text)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def keep_ends(value: str, head: int = 3, tail: int = 2) -> str:
    """``value`` with all but its first ``head`` and last ``tail`` characters starred."""
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]
