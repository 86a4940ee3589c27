"""Validators of what applicants type: ID numbers, credit codes, phones, waybills, names, passwords.

Each function returns the normalised value or raises ``InvalidInput`` whose ``code`` names the
exact fault, so that the bot can tell the user what to fix (``invalid_id_check_digit`` is a typo,
``invalid_id_birth_date`` a wrong date). Inputs are NFKC-normalised first because users on phones
often type full-width digits and letters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime

from seal_platform.errors import InvalidInput

# GB 11643-1999 resident identity number.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
# First digit of the area code: 1-6 are the mainland regions, 8 the residence permits of Hong Kong,
# Macao and Taiwan residents. Unknown area codes inside a valid region are accepted on purpose:
# codes are retired when districts merge, but the cards issued under them stay valid.
ID_AREA_FIRST_DIGITS = frozenset("1234568")
EARLIEST_BIRTH_DATE = date(1900, 1, 1)

# GB 32100-2015 unified social credit code.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

MOBILE_PATTERN = re.compile(r"^1[3-9]\d{9}$")
MOBILE_SEPARATORS = re.compile(r"[\s\-()（）]")
WAYBILL_PATTERN = re.compile(r"^(?:SF\d{13}|\d{12})$")

# Minority names are written with a middle dot between parts; people type many look-alikes.
NAME_DOT = "·"
NAME_DOT_VARIANTS = "•‧・．.∙⋅"
NAME_MIN_CHARS = 2
NAME_MAX_CHARS = 30

PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 64


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


@dataclass(frozen=True)
class ResidentId:
    """A checked resident identity number and what it encodes."""

    number: str
    area_code: str
    birth_date: date
    sequence: str

    @property
    def is_male(self) -> bool:
        # The parity of the sequence number encodes the sex: odd for men.
        return int(self.sequence[-1]) % 2 == 1

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)


def id_check_char(first17: str) -> str:
    """The check character of the 17 leading digits of a resident identity number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need exactly 17 ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def parse_resident_id(value: str, *, today: date | None = None) -> ResidentId:
    """Check an 18-character resident identity number (GB 11643-1999).

    ``today`` bounds the birth date; pass the platform clock's date so that tests control it.
    First-generation 15-digit numbers are refused: those cards stopped being valid in 2013.
    """
    number = _nfkc(value).replace(" ", "").upper()
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        raise InvalidInput("身份证号码应为18位", code="invalid_id_format", length=len(number))
    if number[17] not in "0123456789X":
        raise InvalidInput("身份证号码最后一位应为数字或X", code="invalid_id_format")
    if number[0] not in ID_AREA_FIRST_DIGITS:
        raise InvalidInput("身份证号码的地区码不正确", code="invalid_id_area")
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise InvalidInput("身份证号码中的出生日期不存在", code="invalid_id_birth_date") from exc
    current = today or datetime.now(UTC).date()
    if birth > current or birth < EARLIEST_BIRTH_DATE:
        raise InvalidInput("身份证号码中的出生日期不合理", code="invalid_id_birth_date")
    if id_check_char(number[:17]) != number[17]:
        raise InvalidInput("身份证号码校验位不正确，请检查是否输错", code="invalid_id_check_digit")
    return ResidentId(number=number, area_code=number[:6], birth_date=birth, sequence=number[14:17])


def normalise_resident_id(value: str, *, today: date | None = None) -> str:
    return parse_resident_id(value, today=today).number


def mask_id_number(number: str) -> str:
    """Keep the first 3 and last 4 characters: enough for a person to recognise their own."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def credit_code_check_char(first17: str) -> str:
    """The check character of the 17 leading characters of a unified social credit code."""
    if len(first17) != 17 or any(ch not in USCC_ALPHABET for ch in first17):
        raise ValueError("need exactly 17 characters of the GB 32100 alphabet")
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def normalise_credit_code(value: str) -> str:
    """Check a unified social credit code (GB 32100-2015) and return it upper-cased.

    Position 1 (registration authority) may be a digit or a letter of the alphabet, position 2
    (organisation category) likewise; positions 3-8 are the administrative area code (digits).
    """
    code = _nfkc(value).replace(" ", "").upper()
    if len(code) != 18:
        raise InvalidInput("统一社会信用代码应为18位", code="invalid_credit_code", length=len(code))
    bad = sorted({ch for ch in code if ch not in USCC_ALPHABET})
    if bad:
        raise InvalidInput(
            "统一社会信用代码含有不允许的字符（不使用I、O、Z、S、V）",
            code="invalid_credit_code",
            characters=bad,
        )
    if not code[2:8].isdigit():
        raise InvalidInput("统一社会信用代码第3-8位应为行政区划码（数字）", code="invalid_credit_code")
    if credit_code_check_char(code[:17]) != code[17]:
        raise InvalidInput(
            "统一社会信用代码校验位不正确，请检查是否输错", code="invalid_credit_code_check_char"
        )
    return code


def normalise_mobile(value: str) -> str:
    """A mainland mobile number as 11 digits, without +86 / 0086 or separators."""
    phone = MOBILE_SEPARATORS.sub("", _nfkc(value))
    if phone.startswith("+86"):
        phone = phone[3:]
    elif phone.startswith("0086"):
        phone = phone[4:]
    if not MOBILE_PATTERN.fullmatch(phone):
        raise InvalidInput("请输入有效的中国大陆手机号码", code="invalid_mobile")
    return phone


def mask_mobile(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "*" * len(phone)


def normalise_sf_waybill(value: str) -> str:
    """An SF Express waybill number: ``SF`` + 13 digits, or 12 digits (older numbers)."""
    waybill = re.sub(r"\s", "", _nfkc(value)).upper()
    if not WAYBILL_PATTERN.fullmatch(waybill):
        raise InvalidInput("顺丰运单号应为SF加13位数字，或12位数字", code="invalid_waybill")
    return waybill


def normalise_person_name(value: str) -> str:
    """A person's name as on the ID card: letters only, with ``·`` between parts of minority names."""
    name = _nfkc(value)
    for variant in NAME_DOT_VARIANTS:
        name = name.replace(variant, NAME_DOT)
    if not NAME_MIN_CHARS <= len(name) <= NAME_MAX_CHARS:
        raise InvalidInput(
            f"姓名应为{NAME_MIN_CHARS}到{NAME_MAX_CHARS}个字",
            code="invalid_name_length",
            min=NAME_MIN_CHARS,
            max=NAME_MAX_CHARS,
        )
    for ch in name:
        if ch == NAME_DOT or ch == " ":
            continue
        category = unicodedata.category(ch)
        if category.startswith("N"):
            raise InvalidInput("姓名中不能有数字", code="invalid_name_chars")
        if not category.startswith("L"):
            raise InvalidInput("姓名中有不允许的字符", code="invalid_name_chars")
    if name.startswith(NAME_DOT) or name.endswith(NAME_DOT) or NAME_DOT * 2 in name or "  " in name:
        raise InvalidInput("姓名中的间隔号位置不正确", code="invalid_name_chars")
    return name


def check_password_policy(value: str) -> str:
    """8-64 characters with at least one letter and one digit; returned unchanged."""
    if len(value) < PASSWORD_MIN_CHARS:
        raise InvalidInput(
            f"密码至少{PASSWORD_MIN_CHARS}位", code="password_too_short", min=PASSWORD_MIN_CHARS
        )
    if len(value) > PASSWORD_MAX_CHARS:
        raise InvalidInput(
            f"密码最多{PASSWORD_MAX_CHARS}位", code="password_too_long", max=PASSWORD_MAX_CHARS
        )
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise InvalidInput("密码中有不可见字符", code="password_invalid_chars")
    has_letter = any(ch.isascii() and ch.isalpha() for ch in value)
    has_digit = any(ch.isascii() and ch.isdigit() for ch in value)
    if not (has_letter and has_digit):
        raise InvalidInput("密码需同时包含字母和数字", code="password_too_weak")
    return value
