from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from seal_platform.clock import FrozenClock
from seal_platform.errors import InvalidInput
from seal_platform.production.ca import (
    ECDSA_WITH_SHA256_OID,
    SHA256_WITH_RSA_OID,
    SM3_WITH_SM2_OID,
    CertificateAuthority,
    EcdsaP256,
    OrganisationSubject,
    SealMaker,
)
from seal_platform.production.impression import draw_enterprise_seal, seal_code
from seal_platform.production.seseal import (
    ExtensionData,
    SealKind,
    SealPicture,
    SealVerificationError,
    make_seseal,
    parse_seseal,
    verify_seseal,
)

COMPANY = "广州瑞术科技有限公司"
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
VALID_END = datetime(2028, 11, 28, 2, 0, tzinfo=UTC)


@dataclass
class SealFixture:
    ca: CertificateAuthority
    holder: x509.Certificate
    picture: SealPicture
    der: bytes


def _make(
    ca: CertificateAuthority, holder: x509.Certificate, base_picture: SealPicture, **overrides: object
) -> bytes:
    arguments: dict[str, object] = {
        "signer": ca.seal_maker,
        "es_id": "44010600012342",
        "kind": SealKind.ORGANISATION,
        "name": COMPANY,
        "holder_certificates": [holder],
        "picture": base_picture,
        "created_at": NOW,
        "valid_start": NOW,
        "valid_end": VALID_END,
    }
    arguments.update(overrides)
    return make_seseal(**arguments)  # type: ignore[arg-type]


def _verify(seal: SealFixture, der: bytes | None = None, at: datetime = NOW) -> object:
    return verify_seseal(
        seal.der if der is None else der,
        [seal.ca.root_certificate],
        intermediates=[seal.ca.issuing_certificate],
        at=at,
    )


@pytest.fixture(scope="module", params=["ecdsa-p256", "rsa-2048"])
def seal(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SealFixture:
    ca = CertificateAuthority.load_or_create(
        tmp_path_factory.mktemp("ca"), b"secret", FrozenClock(NOW), algorithm=request.param
    )
    holder = ca.issue_seal_certificate(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        OrganisationSubject(COMPANY, "91110000600037341L"),
        years=2,
    )
    impression = draw_enterprise_seal(COMPANY, seal_code("440106", 1234))
    picture = SealPicture(impression.png, impression.width_mm, impression.height_mm)
    return SealFixture(ca, holder, picture, _make(ca, holder, picture))


def test_seal_round_trips_every_field(seal: SealFixture) -> None:
    parsed = parse_seseal(seal.der)
    assert parsed.version == 4
    assert parsed.es_id == "44010600012342"
    assert parsed.kind is SealKind.ORGANISATION
    assert parsed.name == COMPANY
    assert parsed.holder_certificates == (seal.holder,)
    assert parsed.created_at == NOW
    assert parsed.valid_start == NOW
    assert parsed.valid_end == VALID_END
    assert parsed.picture == seal.picture
    assert parsed.picture.width_mm == 40
    assert parsed.maker_certificate == seal.ca.seal_maker.certificate
    assert parsed.extensions == ()


def test_signature_algorithm_follows_the_ca(seal: SealFixture) -> None:
    expected = {ECDSA_WITH_SHA256_OID, SHA256_WITH_RSA_OID}
    assert parse_seseal(seal.der).signature_oid == seal.ca.seal_maker.signature_oid
    assert seal.ca.seal_maker.signature_oid in expected


def test_valid_seal_verifies(seal: SealFixture) -> None:
    parsed = verify_seseal(
        seal.der, [seal.ca.root_certificate], intermediates=[seal.ca.issuing_certificate], at=NOW
    )
    assert parsed.name == COMPANY


def test_der_has_the_standard_shape(seal: SealFixture) -> None:
    # Decoded with generic ASN.1 classes, independent of the module's own definitions.
    outer = core.Sequence.load(seal.der)
    assert len(outer) == 4
    seal_info = core.Sequence.load(outer[0].dump())
    header = core.Sequence.load(seal_info[0].dump())
    assert header[0].tag == 22  # IA5String
    assert core.IA5String.load(header[0].dump()).native == "ES"
    assert core.Integer.load(header[1].dump()).native == 4
    assert core.IA5String.load(seal_info[1].dump()).native == "44010600012342"
    assert outer[1].tag == 4  # OCTET STRING: the maker certificate
    assert core.ObjectIdentifier.load(outer[2].dump()).dotted == seal.ca.seal_maker.signature_oid
    assert outer[3].tag == 3  # BIT STRING


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_parses_the_der(seal: SealFixture, tmp_path: Path) -> None:
    path = tmp_path / "seal.der"
    path.write_bytes(seal.der)
    openssl = shutil.which("openssl")
    assert openssl is not None
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [openssl, "asn1parse", "-inform", "DER", "-in", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ":ES" in result.stdout
    assert "GENERALIZEDTIME   :20281128020000Z" in result.stdout


def _flip(der: bytes, offset: int) -> bytes:
    return der[:offset] + bytes([der[offset] ^ 0x01]) + der[offset + 1 :]


def test_tampered_picture_fails(seal: SealFixture) -> None:
    offset = seal.der.index(seal.picture.data) + len(seal.picture.data) // 2
    with pytest.raises(SealVerificationError, match="signature does not verify"):
        _verify(seal, _flip(seal.der, offset))


def test_tampered_name_fails(seal: SealFixture) -> None:
    forged = seal.der.replace(COMPANY.encode(), "广州瑞木科技有限公司".encode(), 1)
    assert forged != seal.der
    assert parse_seseal(forged).name == "广州瑞木科技有限公司"
    with pytest.raises(SealVerificationError, match="signature does not verify"):
        _verify(seal, forged)


@pytest.mark.parametrize("stamp", [b"20281128020000Z", b"20261128020000Z"])
def test_tampered_dates_fail(seal: SealFixture, stamp: bytes) -> None:
    forged = seal.der.replace(stamp, stamp.replace(b"20", b"21", 1), 1)
    assert forged != seal.der
    with pytest.raises(SealVerificationError, match="signature does not verify"):
        _verify(seal, forged)


def test_every_byte_of_the_signed_part_is_protected(seal: SealFixture) -> None:
    """Flip a sample of bytes across eSealInfo: each one is either malformed or unsigned."""
    signed = parse_seseal(seal.der).signed_data
    start = seal.der.index(signed)
    for offset in range(start, start + len(signed), max(1, len(signed) // 97)):
        with pytest.raises(SealVerificationError):
            _verify(seal, _flip(seal.der, offset))


def test_truncated_or_trailing_data_is_malformed(seal: SealFixture) -> None:
    with pytest.raises(SealVerificationError, match="malformed"):
        parse_seseal(seal.der[:-10])
    with pytest.raises(SealVerificationError, match="malformed"):
        parse_seseal(seal.der + b"\x00")


def test_seal_outside_its_validity_fails(seal: SealFixture) -> None:
    later = _make(seal.ca, seal.holder, seal.picture, valid_start=NOW + timedelta(days=10))
    with pytest.raises(SealVerificationError, match="outside its validity period"):
        _verify(seal, later, at=NOW + timedelta(days=1))
    with pytest.raises(SealVerificationError, match="outside its validity period"):
        _verify(seal, at=VALID_END + timedelta(seconds=1))
    assert _verify(seal, at=VALID_END)


def test_seal_from_an_untrusted_maker_fails(seal: SealFixture, tmp_path: Path) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other", b"secret", FrozenClock(NOW))
    with pytest.raises(SealVerificationError, match="seal maker is not trusted"):
        verify_seseal(seal.der, [other.root_certificate], intermediates=[other.issuing_certificate], at=NOW)


def test_maker_signature_by_another_key_fails(seal: SealFixture, tmp_path: Path) -> None:
    """A seal signed by one maker but carrying another maker's certificate is a forgery."""
    other = CertificateAuthority.load_or_create(tmp_path / "other", b"secret", FrozenClock(NOW))
    impostor = SealMaker(
        seal.ca.seal_maker.certificate, other.seal_maker.private_key, other.seal_maker.algorithm
    )
    forged = _make(seal.ca, seal.holder, seal.picture, signer=impostor)
    with pytest.raises(SealVerificationError, match="signature does not verify"):
        _verify(seal, forged)


def test_personal_seal_kind_and_extensions_round_trip(seal: SealFixture) -> None:
    der = _make(
        seal.ca,
        seal.holder,
        seal.picture,
        kind=SealKind.PERSONAL,
        name="张三",
        extensions=[ExtensionData("1.2.3.4", b"order:SO1", critical=True)],
    )
    parsed = _verify(seal, der)
    assert parsed.kind is SealKind.PERSONAL  # type: ignore[attr-defined]
    assert parsed.extensions == (ExtensionData("1.2.3.4", b"order:SO1", True),)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "overrides",
    [
        {"holder_certificates": []},
        {"name": "  "},
        {"valid_end": NOW - timedelta(days=1)},
        {"valid_start": datetime(2026, 1, 1)},  # no time zone
        {"es_id": "编码"},
        {"picture": SealPicture(b"png", 40, 40, type="TIFF")},
        {"picture": SealPicture(b"", 40, 40)},
    ],
)
def test_bad_seal_input_is_refused(seal: SealFixture, overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        _make(seal.ca, seal.holder, seal.picture, **overrides)


class _PluggedSm2:
    """Stands in for an SM2 provider: same plumbing, another OID. (No SM2 exists in pyca.)"""

    def __init__(self, maker: SealMaker) -> None:
        self._maker = maker
        self.signature_oid = SM3_WITH_SM2_OID
        self.certificate_der = maker.certificate_der

    def sign(self, data: bytes) -> bytes:
        return self._maker.sign(data)


class _PluggedSm2Verifier(EcdsaP256):
    def __init__(self) -> None:
        super().__init__(name="sm2-plugin", signature_oid=SM3_WITH_SM2_OID)

    def verify(self, public_key: CertificatePublicKeyTypes, signature: bytes, data: bytes) -> bool:
        return super().verify(public_key, signature, data)


def test_sm2_seal_needs_a_plugged_verifier(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca", b"secret", FrozenClock(NOW))
    holder = ca.issue_seal_certificate(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        OrganisationSubject(COMPANY, "91110000600037341L"),
        years=2,
    )
    der = _make(ca, holder, SealPicture(b"\x89PNG", 40, 40), signer=_PluggedSm2(ca.seal_maker))
    assert parse_seseal(der).signature_oid == SM3_WITH_SM2_OID
    roots, intermediates = [ca.root_certificate], [ca.issuing_certificate]
    with pytest.raises(SealVerificationError, match="SM2"):
        verify_seseal(der, roots, intermediates=intermediates, at=NOW)
    verified = verify_seseal(
        der, roots, intermediates=intermediates, at=NOW, verifiers={SM3_WITH_SM2_OID: _PluggedSm2Verifier()}
    )
    assert verified.name == COMPANY
