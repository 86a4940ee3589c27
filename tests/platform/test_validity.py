"""The validity arithmetic: renewal extends from the later of the old end and today; change and
reissue keep the end date."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from seal_platform.errors import RuleViolation
from seal_platform.validity import kept_valid_to, renewed_valid_to

NOW = datetime(2027, 10, 29, 2, 0, tzinfo=UTC)


def test_renewal_before_expiry_adds_the_years_to_the_old_end_date() -> None:
    old_end = datetime(2027, 11, 28, 2, 0, tzinfo=UTC)
    assert renewed_valid_to(old_end, NOW, 1) == datetime(2028, 11, 28, 2, 0, tzinfo=UTC)
    assert renewed_valid_to(old_end, NOW, 3) == datetime(2030, 11, 28, 2, 0, tzinfo=UTC)


def test_renewal_after_expiry_counts_from_today() -> None:
    lapsed = datetime(2027, 9, 1, tzinfo=UTC)
    assert renewed_valid_to(lapsed, NOW, 2) == datetime(2029, 10, 29, 2, 0, tzinfo=UTC)


def test_renewal_reads_a_naive_stored_end_date_as_utc() -> None:
    assert renewed_valid_to(datetime(2027, 11, 28, 2, 0), NOW, 1) == datetime(2028, 11, 28, 2, 0, tzinfo=UTC)


def test_renewal_of_29_february_ends_on_28_february() -> None:
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert renewed_valid_to(leap, datetime(2028, 1, 10, tzinfo=UTC), 1) == datetime(2029, 2, 28, tzinfo=UTC)


def test_change_and_reissue_keep_the_end_date_to_the_second() -> None:
    end = datetime(2028, 11, 30, 8, 15, 42, tzinfo=UTC)
    assert kept_valid_to(end, NOW) == end


def test_an_ended_term_has_nothing_to_keep() -> None:
    with pytest.raises(RuleViolation) as ended:
        kept_valid_to(datetime(2027, 10, 1, tzinfo=UTC), NOW)
    assert ended.value.code == "seal_term_ended"
    with pytest.raises(RuleViolation):
        kept_valid_to(None, NOW)
