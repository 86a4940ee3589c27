from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seal_platform.errors import InvalidInput
from seal_platform.validation import (
    USCC_ALPHABET,
    check_password_policy,
    credit_code_check_char,
    id_check_char,
    mask_id_number,
    normalise_credit_code,
    normalise_mobile,
    normalise_person_name,
    normalise_resident_id,
    normalise_sf_waybill,
    parse_resident_id,
)

TODAY = date(2026, 11, 28)


def raises_code(code: str, fn: object, *args: object, **kwargs: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert info.value.code == code, info.value.to_problem()
    return info.value


# --- resident ID -----------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["11010519491231002X", "360426199101010071"])
def test_reference_resident_ids_are_valid(number: str) -> None:
    assert normalise_resident_id(number, today=TODAY) == number


def test_resident_id_lowercase_x_and_fullwidth_digits_are_normalised() -> None:
    assert normalise_resident_id(" 11010519491231002x ", today=TODAY) == "11010519491231002X"
    assert normalise_resident_id("３６０４２６１９９１０１０１００７１", today=TODAY) == "360426199101010071"


def test_resident_id_exposes_birth_date_sex_and_age() -> None:
    resident = parse_resident_id("11010519491231002X", today=TODAY)
    assert resident.birth_date == date(1949, 12, 31)
    assert resident.is_male is False  # sequence 002: even
    assert resident.age_on(date(2026, 12, 30)) == 76
    assert resident.age_on(date(2026, 12, 31)) == 77
    assert resident.masked == "110***********002X"


def test_resident_id_with_wrong_check_digit_is_refused() -> None:
    raises_code("invalid_id_check_digit", normalise_resident_id, "110105194912310021", today=TODAY)


def test_resident_id_with_impossible_birth_date_is_refused() -> None:
    body = "11010519490231002"  # 31 February
    raises_code("invalid_id_birth_date", normalise_resident_id, body + id_check_char(body), today=TODAY)


def test_resident_id_born_in_the_future_is_refused() -> None:
    body = "11010520270101002"
    raises_code("invalid_id_birth_date", normalise_resident_id, body + id_check_char(body), today=TODAY)


def test_resident_id_born_today_is_accepted_as_a_number() -> None:
    body = "110105" + TODAY.strftime("%Y%m%d") + "001"
    assert normalise_resident_id(body + id_check_char(body), today=TODAY).startswith("110105")


@pytest.mark.parametrize("first", ["0", "7", "9"])
def test_resident_id_outside_known_regions_is_refused(first: str) -> None:
    body = first + "1010519491231002"
    raises_code("invalid_id_area", normalise_resident_id, body + id_check_char(body), today=TODAY)


def test_resident_id_with_unknown_area_code_inside_a_region_is_accepted() -> None:
    # 119999 is not an assigned area code; python-stdnum refuses it, GB 11643 does not.
    body = "11999919800101001"
    number = body + id_check_char(body)
    assert normalise_resident_id(number, today=TODAY) == number


def test_hong_kong_macao_taiwan_residence_permit_is_accepted() -> None:
    body = "81000019900101001"
    assert normalise_resident_id(body + id_check_char(body), today=TODAY)[:2] == "81"


@pytest.mark.parametrize(
    "value", ["", "11010519491231002", "1101051949123100XX", "110105194912310 2X", "11010519491231002Y"]
)
def test_resident_id_of_wrong_shape_is_refused(value: str) -> None:
    raises_code("invalid_id_format", normalise_resident_id, value, today=TODAY)


@st.composite
def resident_id_bodies(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from("1234568")) + draw(st.text("0123456789", min_size=5, max_size=5))
    birth = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    sequence = draw(st.text("0123456789", min_size=3, max_size=3))
    return area + birth.strftime("%Y%m%d") + sequence


@given(resident_id_bodies())
def test_any_body_with_its_check_char_is_valid(body: str) -> None:
    number = body + id_check_char(body)
    assert normalise_resident_id(number, today=TODAY) == number


@given(resident_id_bodies(), st.sampled_from("0123456789X"))
def test_every_other_check_char_is_refused(body: str, check: str) -> None:
    if check == id_check_char(body):
        return
    raises_code("invalid_id_check_digit", normalise_resident_id, body + check, today=TODAY)


@given(resident_id_bodies(), st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=9))
def test_a_single_changed_digit_is_detected(body: str, position: int, delta: int) -> None:
    # Mod 11 with these weights detects every single-digit error: no weight is a multiple of 11.
    number = body + id_check_char(body)
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    with pytest.raises(InvalidInput) as refused:
        normalise_resident_id(changed, today=TODAY)
    assert refused.value.code in {"invalid_id_check_digit", "invalid_id_birth_date", "invalid_id_area"}


def test_mask_id_number_keeps_three_and_four() -> None:
    assert mask_id_number("360426199101010071") == "360***********0071"


# --- unified social credit code ---------------------------------------------------------------


def test_reference_credit_code_is_valid() -> None:
    assert normalise_credit_code("91110000600037341L") == "91110000600037341L"


def test_credit_code_is_upper_cased_and_spaces_removed() -> None:
    assert normalise_credit_code(" 9111 0000 6000 3734 1l ") == "91110000600037341L"


def test_credit_code_with_wrong_check_char_is_refused() -> None:
    raises_code("invalid_credit_code_check_char", normalise_credit_code, "91110000600037341M")


@pytest.mark.parametrize(
    "value", ["9111000060003734", "91110000600037341LL", "9111000060003734IO", "911A00006000373410"]
)
def test_credit_code_of_wrong_shape_or_alphabet_is_refused(value: str) -> None:
    raises_code("invalid_credit_code", normalise_credit_code, value)


def test_credit_code_with_letter_registration_authority_is_accepted() -> None:
    body = "N2110000600037341"  # N: a registration authority code written as a letter
    code = body + credit_code_check_char(body)
    assert normalise_credit_code(code) == code


@st.composite
def credit_code_bodies(draw: st.DrawFn) -> str:
    head = draw(st.text(USCC_ALPHABET, min_size=2, max_size=2))
    area = draw(st.text("0123456789", min_size=6, max_size=6))
    organisation = draw(st.text(USCC_ALPHABET, min_size=9, max_size=9))
    return head + area + organisation


@given(credit_code_bodies())
def test_any_credit_code_body_with_its_check_char_is_valid(body: str) -> None:
    assert normalise_credit_code(body + credit_code_check_char(body)) == body + credit_code_check_char(body)


@given(credit_code_bodies(), st.sampled_from(USCC_ALPHABET))
def test_every_other_credit_code_check_char_is_refused(body: str, check: str) -> None:
    if check == credit_code_check_char(body):
        return
    raises_code("invalid_credit_code_check_char", normalise_credit_code, body + check)


# --- mobile, waybill, name, password --------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000", "138-0013-8000", "１３８００１３８０００"],
)
def test_mobile_numbers_are_normalised(value: str) -> None:
    assert normalise_mobile(value) == "13800138000"


@pytest.mark.parametrize("value", ["12800138000", "1380013800", "138001380001", "+85291234567", "phone", ""])
def test_non_mainland_or_malformed_mobiles_are_refused(value: str) -> None:
    raises_code("invalid_mobile", normalise_mobile, value)


@pytest.mark.parametrize(
    ("value", "expected"), [("sf1234567890123", "SF1234567890123"), ("1234 5678 9012", "123456789012")]
)
def test_sf_waybills_are_normalised(value: str, expected: str) -> None:
    assert normalise_sf_waybill(value) == expected


@pytest.mark.parametrize("value", ["SF123456789012", "12345678901", "YT1234567890123", "SF12345678901234"])
def test_malformed_sf_waybills_are_refused(value: str) -> None:
    raises_code("invalid_waybill", normalise_sf_waybill, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("张三", "张三"),
        (" 欧阳娜娜 ", "欧阳娜娜"),
        ("买买提·艾力", "买买提·艾力"),
        ("买买提•艾力", "买买提·艾力"),
        ("阿依古丽・买买提", "阿依古丽·买买提"),
    ],
)
def test_person_names_are_accepted_and_dots_unified(value: str, expected: str) -> None:
    assert normalise_person_name(value) == expected


def test_one_character_name_is_refused() -> None:
    raises_code("invalid_name_length", normalise_person_name, "张")


def test_overlong_name_is_refused() -> None:
    raises_code("invalid_name_length", normalise_person_name, "张" * 31)


@pytest.mark.parametrize("value", ["张三3", "张三\x00", "张三!", "·张三", "张三·", "张··三", "张\n三"])
def test_names_with_digits_controls_or_misplaced_dots_are_refused(value: str) -> None:
    raises_code("invalid_name_chars", normalise_person_name, value)


def test_password_policy() -> None:
    assert check_password_policy("abcdefg1") == "abcdefg1"
    raises_code("password_too_short", check_password_policy, "abc1234")
    raises_code("password_too_long", check_password_policy, "a1" * 33)
    raises_code("password_too_weak", check_password_policy, "abcdefgh")
    raises_code("password_too_weak", check_password_policy, "12345678")
    raises_code("password_invalid_chars", check_password_policy, "abcd1234\x07")
