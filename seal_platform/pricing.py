"""Prices and validity options, from settings: what an order costs is configuration, not code."""

from __future__ import annotations

from seal_platform.errors import InvalidInput
from seal_platform.settings import PlatformSettings

# Which seal kinds an order for a new seal makes; renewal/change/reissue/unlock take the kind of
# the seal they act on.
NEW_SEAL_KINDS: dict[str, tuple[str, ...]] = {
    "enterprise_seal": ("enterprise",),
    "personal_seal": ("personal",),
    "bundle": ("enterprise", "personal"),
}


def check_years(settings: PlatformSettings, years: int) -> int:
    if years not in settings.validity_years_options:
        raise InvalidInput(
            "validity years not offered",
            code="invalid_years",
            years=years,
            options=list(settings.validity_years_options),
        )
    return years


def _per_year(settings: PlatformSettings, kind: str) -> int:
    try:
        return settings.price_per_year_fen[kind]
    except KeyError as exc:
        raise InvalidInput("no price configured", code="price_missing", kind=kind) from exc


def order_price_fen(
    settings: PlatformSettings, order_type: str, *, years: int | None, seal_kind: str | None
) -> int:
    """Amount to pay, in fen, for an order of ``order_type``."""
    if order_type in NEW_SEAL_KINDS:
        n = check_years(settings, years or 0)
        return sum(_per_year(settings, kind) * n for kind in NEW_SEAL_KINDS[order_type])
    if order_type == "renewal":
        if seal_kind is None:
            raise InvalidInput("renewal needs a seal", code="seal_required")
        return _per_year(settings, seal_kind) * check_years(settings, years or 0)
    try:
        return settings.price_flat_fen[order_type]
    except KeyError as exc:
        raise InvalidInput("no price configured", code="price_missing", order_type=order_type) from exc


def price_list(settings: PlatformSettings) -> dict[str, object]:
    """The price table as shown to users (the bot renders it before asking for years)."""
    return {
        "currency": "CNY",
        "validity_years_options": list(settings.validity_years_options),
        "per_year_fen": dict(settings.price_per_year_fen),
        "flat_fen": dict(settings.price_flat_fen),
    }
