"""One rule set finds personal numbers for the logs, the stored transcripts and the display
masks: what one of them hides, the others hide too (each in its own form)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.engine.secrets_box import mask_text
from bot.redaction import CODE_MARK, mask_free_text
from observability.logs import mask as log_mask
from observability.personal_numbers import _FOUND, _SIX_DIGITS, Kind, replace_personal_numbers

ID_NUMBER = "110101199003074477"
MOBILE = "13812345678"
CARD = "6222 0212 3456 7890 128"  # Luhn-valid
TEXT = f"身份证{ID_NUMBER}，手机{MOBILE}，卡号 {CARD}，验证码 482913，订单 86063DBD，2028 年"


def test_the_rule_set_names_each_kind_once_longest_first() -> None:
    found: list[tuple[Kind, str]] = []
    replace_personal_numbers(TEXT, lambda kind, number: found.append((kind, number)) or None)
    assert found == [
        (Kind.ID_NUMBER, ID_NUMBER),
        (Kind.MOBILE, MOBILE),
        (Kind.CARD, CARD),
        (Kind.CODE, "482913"),
    ]


def test_logs_transcripts_and_display_masks_hide_the_same_numbers() -> None:
    logged, stored, shown = log_mask(TEXT), mask_free_text(TEXT), mask_text(TEXT)
    for masked in (logged, stored, shown):
        assert ID_NUMBER not in masked
        assert MOBILE not in masked
        assert "86063DBD" in masked
        assert "2028 年" in masked
    assert (
        logged
        == "身份证[id-number]，手机138****5678，卡号 [card-number]，验证码 [code]，订单 86063DBD，2028 年"
    )
    assert (
        stored
        == f"身份证110*************77，手机138******78，卡号 ***************0128，验证码 {CODE_MARK}，订单 86063DBD，2028 年"
    )
    # display masks leave codes and cards to the redaction that ran before storage
    assert (
        shown
        == f"身份证110*************77，手机138******78，卡号 {CARD}，验证码 482913，订单 86063DBD，2028 年"
    )


def test_a_number_that_fails_the_luhn_check_is_no_card_for_the_transcript_but_is_hidden_in_logs() -> None:
    not_a_card = "6222021234567890120"
    assert not_a_card in mask_free_text(f"编号 {not_a_card}")
    assert not_a_card not in log_mask(f"编号 {not_a_card}")


# Digits (ASCII and full-width), separators and the characters around numbers in messages.
_NUMBERISH = st.text(alphabet=st.sampled_from("0123456789１２３ -Xx号，a"), max_size=40)


@settings(max_examples=400, deadline=None)
@given(_NUMBERISH)
@example(CARD)  # grouped digits: no six in a row
@example("6222-0212-3456-7890")
@example("卡号１２３４５６７８９０１２３４５６号")
def test_a_text_the_quick_check_passes_over_holds_nothing_the_rules_find(text: str) -> None:
    # replace_personal_numbers returns a text without six digits (grouped or not) untouched,
    # before running the rules: the rules themselves must find nothing in it either.
    found: list[str] = []
    _FOUND.sub(lambda match: found.append(match.group(0)) or match.group(0), text)
    if not _SIX_DIGITS.search(text):
        assert found == []
    assert replace_personal_numbers(text, lambda kind, number: "#") == _FOUND.sub("#", text)
