"""The workload every contender runs: users filling a 9-field enterprise application form.

One definition of the answers, the validation and the arrival pattern, so that the engine and
its peers do the same work: the same messages, the same checks, the same number of replies.
"""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from bot import gc_settings

FIELDS = (
    "company",
    "credit_code",
    "legal_rep",
    "legal_rep_id",
    "phone",
    "years",
    "recipient",
    "address",
    "confirm",
)

YEARS = ("1", "2", "3")  # the validity choices; the user answers with the option's number

_CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")
_PHONE = re.compile(r"1[3-9]\d{9}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


class BadAnswer(ValueError):
    """An answer the form refuses; ``reason`` names what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def valid_credit_code(text: str) -> str:
    code = text.strip().upper()
    if not _CREDIT_CODE.fullmatch(code):
        raise BadAnswer("credit_code")
    return code


def valid_id_number(text: str) -> str:
    value = text.strip().upper()
    if len(value) != 18 or not value[:17].isdigit() or id_check_char(value[:17]) != value[17]:
        raise BadAnswer("id_number")
    return value


def valid_phone(text: str) -> str:
    value = text.strip()
    if not _PHONE.fullmatch(value):
        raise BadAnswer("phone")
    return value


def valid_years(text: str) -> str:
    value = text.strip()
    if value not in YEARS:
        raise BadAnswer("years")
    return value


def valid_text(text: str, limit: int = 100) -> str:
    value = text.strip()
    if not value or len(value) > limit:
        raise BadAnswer("text")
    return value


def mask(value: str) -> str:
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


@dataclass(frozen=True)
class UserScript:
    """What one user sends, in order: the command that opens the form, then one answer per
    field (the last is "1", the first option of the summary: confirm)."""

    user: int
    messages: tuple[str, ...]


def script_for(user: int) -> UserScript:
    id17 = f"110105{1950 + user % 50:04d}{1 + user % 12:02d}{1 + user % 28:02d}{user % 1000:03d}"
    answers = (
        f"上海第{user}号科技有限公司",
        f"91310000{user:010d}",
        f"法人{user}",
        id17 + id_check_char(id17),
        f"138{user:08d}",
        YEARS[user % len(YEARS)],
        f"收件人{user}",
        f"上海市浦东新区世纪大道{user}号",
        "1",
    )
    return UserScript(user, ("/apply", *answers))


def scripts(users: int) -> list[UserScript]:
    return [script_for(u) for u in range(1, users + 1)]


async def run_users(
    user_scripts: Sequence[UserScript],
    send: Callable[[int, int, str], Awaitable[None]],
    *,
    concurrency: int,
) -> None:
    """Users arrive as earlier ones finish (at most ``concurrency`` in a conversation at once),
    and the messages of all active users interleave: each user sends the next message only
    when the previous one was handled, as a person waits for the bot's answer.

    ``send(user, index, text)`` handles message ``index`` of ``user``.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one_user(script: UserScript) -> None:
        async with gate:
            for index, text in enumerate(script.messages):
                await send(script.user, index, text)

    await asyncio.gather(*(one_user(s) for s in user_scripts))


@contextmanager
def as_the_service_runs() -> Iterator[None]:
    """The cyclic garbage collector set as ``sealbot serve`` sets it (``bot.gc_settings``),
    and set back afterwards, so that a contender after it runs with what it ships with."""
    before = gc_settings.configure_for_service()
    try:
        yield
    finally:
        gc.set_threshold(*before)
