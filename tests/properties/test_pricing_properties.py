"""Order prices from settings, for any price table and validity the operator may configure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seal_platform.errors import InvalidInput
from seal_platform.pricing import NEW_SEAL_KINDS, order_price_fen
from seal_platform.settings import PlatformSettings

fen = st.integers(min_value=1, max_value=10_000_000)
years_options = st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=5, unique=True)


def _settings(enterprise: int, personal: int, flat: int, options: list[int]) -> PlatformSettings:
    return PlatformSettings(
        _env_file=None,  # type: ignore[call-arg]
        price_per_year_fen={"enterprise": enterprise, "personal": personal},
        price_flat_fen={"change": flat, "reissue": flat, "unlock": flat},
        validity_years_options=options,
    )


@settings(max_examples=200, derandomize=True, deadline=None)
@given(enterprise=fen, personal=fen, flat=fen, options=years_options, data=st.data())
def test_prices_follow_the_table(
    enterprise: int, personal: int, flat: int, options: list[int], data: st.DataObject
) -> None:
    config = _settings(enterprise, personal, flat, options)
    years = data.draw(st.sampled_from(options))
    per_year = {"enterprise": enterprise, "personal": personal}
    for order_type, kinds in NEW_SEAL_KINDS.items():
        expected = sum(per_year[kind] for kind in kinds) * years
        assert order_price_fen(config, order_type, years=years, seal_kind=None) == expected
    for kind, price in per_year.items():
        assert order_price_fen(config, "renewal", years=years, seal_kind=kind) == price * years
    for order_type in ("change", "reissue", "unlock"):
        assert order_price_fen(config, order_type, years=None, seal_kind="enterprise") == flat


@settings(max_examples=100, derandomize=True, deadline=None)
@given(options=years_options, years=st.integers(min_value=-5, max_value=20))
def test_years_not_offered_are_refused_for_new_seals_and_renewals(options: list[int], years: int) -> None:
    config = _settings(30000, 20000, 15000, options)
    if years in options:
        return
    with pytest.raises(InvalidInput) as refused:
        order_price_fen(config, "enterprise_seal", years=years, seal_kind=None)
    assert refused.value.code == "invalid_years"
    with pytest.raises(InvalidInput) as refused_renewal:
        order_price_fen(config, "renewal", years=years, seal_kind="personal")
    assert refused_renewal.value.code == "invalid_years"
