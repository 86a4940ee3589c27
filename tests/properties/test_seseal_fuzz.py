"""Fuzzing the GB/T 38540 SESeal parser and verifier (hypothesis, derandomised for CI).

A seal read back from a UKey or uploaded by a relying party is untrusted bytes: whatever they
are, parsing may only return a seal or raise ``SealVerificationError``, and a seal with any
byte changed must never verify.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seal_platform.clock import FrozenClock
from seal_platform.production.ca import CertificateAuthority, OrganisationSubject
from seal_platform.production.impression import draw_enterprise_seal, seal_code
from seal_platform.production.seseal import (
    SealKind,
    SealPicture,
    SealVerificationError,
    make_seseal,
    parse_seseal,
    verify_seseal,
)

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
FUZZ = settings(
    max_examples=int(os.environ.get("SEALBOT_FUZZ_EXAMPLES", "150")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class _Seal:
    def __init__(self, ca: CertificateAuthority, der: bytes) -> None:
        self.ca = ca
        self.der = der


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> _Seal:
    ca = CertificateAuthority.load_or_create(tmp_path_factory.mktemp("ca"), b"secret", FrozenClock(NOW))
    holder = ca.issue_seal_certificate(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        OrganisationSubject("广州示例科技有限公司", "91110000600037341L"),
        years=2,
    )
    impression = draw_enterprise_seal("广州示例科技有限公司", seal_code("440106", 1234))
    der = make_seseal(
        signer=ca.seal_maker,
        es_id="44010600012342",
        kind=SealKind.ORGANISATION,
        name="广州示例科技有限公司",
        holder_certificates=[holder],
        picture=SealPicture(impression.png, impression.width_mm, impression.height_mm),
        created_at=NOW,
        valid_start=NOW,
        valid_end=datetime(2028, 11, 28, 2, 0, tzinfo=UTC),
    )
    return _Seal(ca, der)


def _verify(seal: _Seal, der: bytes) -> object:
    return verify_seseal(der, [seal.ca.root_certificate], intermediates=[seal.ca.issuing_certificate], at=NOW)


def test_the_unchanged_seal_verifies(seal: _Seal) -> None:
    assert _verify(seal, seal.der) is not None


@FUZZ
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_parse_or_raise_the_seal_error_only(data: bytes) -> None:
    # The one refusal the parser may give is suppressed; any other exception fails the test.
    with contextlib.suppress(SealVerificationError):
        parse_seseal(data)


@FUZZ
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_a_seal_with_any_byte_changed_never_verifies(seal: _Seal, position: int, flip: int) -> None:
    mutated = bytearray(seal.der)
    index = position % len(mutated)
    mutated[index] ^= flip
    with pytest.raises(SealVerificationError):
        _verify(seal, bytes(mutated))


@FUZZ
@given(cut=st.integers(min_value=1))
def test_a_truncated_seal_is_refused_as_malformed(seal: _Seal, cut: int) -> None:
    with pytest.raises(SealVerificationError):
        parse_seseal(seal.der[: cut % len(seal.der)])
