"""Real-name verification of an applicant: does this name belong to this resident ID number?

``RealNameVerifier`` is the seam. The embedded default, ``LocalRealNameVerifier``, can only check
what the number itself proves (format, check digit, a real past birth date, the minimum age); it
cannot know whether the name matches. A production deployment plugs in a verifier that asks a
licensed identity-data vendor (the public-security citizen identity service) behind the same
Protocol and translates its answers into the same errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from seal_platform.errors import RuleViolation
from seal_platform.validation import normalise_person_name, parse_resident_id

# Applicants act for a company or themselves in legal matters: 16 is the age of full civil
# capacity for those who live on their own income, and the youngest age a card is self-held.
MINIMUM_AGE = 16


@dataclass(frozen=True)
class VerifiedIdentity:
    name: str
    id_number: str
    birth_date: date


class RealNameVerifier(Protocol):
    async def verify(self, name: str, id_number: str, *, today: date) -> VerifiedIdentity:
        """Return the normalised identity, or raise ``InvalidInput`` (malformed input),
        ``RuleViolation`` (e.g. ``realname_mismatch``, ``realname_underage``) or ``UpstreamError``."""
        ...


class LocalRealNameVerifier:
    """Checks what can be checked without an identity-data vendor (see the module docstring)."""

    def __init__(self, minimum_age: int = MINIMUM_AGE) -> None:
        self.minimum_age = minimum_age

    async def verify(self, name: str, id_number: str, *, today: date) -> VerifiedIdentity:
        clean_name = normalise_person_name(name)
        resident_id = parse_resident_id(id_number, today=today)
        if resident_id.age_on(today) < self.minimum_age:
            raise RuleViolation(
                f"实名认证需年满{self.minimum_age}周岁",
                code="realname_underage",
                minimum_age=self.minimum_age,
            )
        return VerifiedIdentity(
            name=clean_name, id_number=resident_id.number, birth_date=resident_id.birth_date
        )
