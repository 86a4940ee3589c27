from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from seal_platform.clock import FrozenClock, SystemClock
from seal_platform.errors import InvalidInput
from seal_platform.production.ca import (
    DOCUMENT_SIGNING_EKU,
    CaStoreError,
    CertificateAuthority,
    CertificateNotTrusted,
    OrganisationSubject,
    PersonSubject,
    add_years,
)

SECRET = b"test-platform-secret"
COMPANY = OrganisationSubject("广州瑞术科技有限公司", "91110000600037341L")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 28, 2, 0, tzinfo=UTC))


@pytest.fixture
def ca(tmp_path: Path, clock: FrozenClock) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path / "ca", SECRET, clock)


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ukey")]))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.DER)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


OPENSSL = shutil.which("openssl")


def _openssl_verify(at: datetime, root: Path, issuing: Path, leaf: Path) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(  # noqa: S603 - fixed arguments, files the test wrote
        [
            OPENSSL,
            "verify",
            "-attime",
            str(int(at.timestamp())),
            "-CAfile",
            str(root),
            "-untrusted",
            str(issuing),
            str(leaf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "rsa-2048"])
def test_issued_seal_certificate_verifies_with_openssl(
    tmp_path: Path, clock: FrozenClock, algorithm: str
) -> None:
    authority = CertificateAuthority.load_or_create(tmp_path / "ca", SECRET, clock, algorithm=algorithm)
    holder_key = ec.generate_private_key(ec.SECP256R1())
    leaf = authority.issue_seal_certificate(_csr(holder_key), COMPANY, years=2)
    (tmp_path / "root.pem").write_bytes(_pem(authority.root_certificate))
    (tmp_path / "issuing.pem").write_bytes(_pem(authority.issuing_certificate))
    (tmp_path / "leaf.pem").write_bytes(_pem(leaf))
    (tmp_path / "maker.pem").write_bytes(_pem(authority.seal_maker.certificate))
    for certificate in ("leaf.pem", "maker.pem"):
        result = _openssl_verify(
            clock.now(), tmp_path / "root.pem", tmp_path / "issuing.pem", tmp_path / certificate
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith("OK")


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
def test_openssl_rejects_a_leaf_against_another_root(tmp_path: Path, clock: FrozenClock) -> None:
    first = CertificateAuthority.load_or_create(tmp_path / "one", SECRET, clock)
    second = CertificateAuthority.load_or_create(tmp_path / "two", SECRET, clock)
    leaf = first.issue_seal_certificate(
        ec.generate_private_key(ec.SECP256R1()).public_key(), COMPANY, years=1
    )
    (tmp_path / "root.pem").write_bytes(_pem(second.root_certificate))
    (tmp_path / "issuing.pem").write_bytes(_pem(first.issuing_certificate))
    (tmp_path / "leaf.pem").write_bytes(_pem(leaf))
    result = _openssl_verify(
        clock.now(), tmp_path / "root.pem", tmp_path / "issuing.pem", tmp_path / "leaf.pem"
    )
    assert result.returncode != 0


def test_private_keys_at_rest_are_encrypted_and_reload_gives_the_same_ca(
    tmp_path: Path, clock: FrozenClock
) -> None:
    directory = tmp_path / "ca"
    first = CertificateAuthority.load_or_create(directory, SECRET, clock)
    key_files = sorted(directory.glob("*.key.pem"))
    assert [path.name for path in key_files] == [
        "issuing-ca.key.pem",
        "root-ca.key.pem",
        "seal-maker.key.pem",
    ]
    for path in key_files:
        text = path.read_text()
        assert "BEGIN ENCRYPTED PRIVATE KEY" in text
        assert path.stat().st_mode & 0o077 == 0
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(text.encode(), password=None)
        # The secret itself does not open them either. A wrong key decrypts to garbage whose
        # padding, about once in 256 tries, still looks right; then ASN.1 parsing refuses it.
        with pytest.raises(ValueError, match=r"password|Could not deserialize key data"):
            serialization.load_pem_private_key(text.encode(), password=SECRET)

    again = CertificateAuthority.load_or_create(directory, SECRET, clock)
    assert again.root_certificate == first.root_certificate
    assert again.issuing_certificate == first.issuing_certificate
    assert again.seal_maker.certificate == first.seal_maker.certificate
    # The reloaded issuing key really is the one behind the certificate: what it issues verifies.
    leaf = again.issue_seal_certificate(
        ec.generate_private_key(ec.SECP256R1()).public_key(), COMPANY, years=1
    )
    assert first.verify_chain(leaf)[-1] == first.root_certificate


def test_reload_with_another_secret_is_refused(tmp_path: Path, clock: FrozenClock) -> None:
    CertificateAuthority.load_or_create(tmp_path / "ca", SECRET, clock)
    with pytest.raises(CaStoreError, match="secret"):
        CertificateAuthority.load_or_create(tmp_path / "ca", b"another secret", clock)


def test_half_created_directory_is_refused_rather_than_overwritten(
    tmp_path: Path, clock: FrozenClock
) -> None:
    CertificateAuthority.load_or_create(tmp_path / "ca", SECRET, clock)
    (tmp_path / "ca" / "issuing-ca.key.pem").unlink()
    with pytest.raises(CaStoreError, match="issuing-ca"):
        CertificateAuthority.load_or_create(tmp_path / "ca", SECRET, clock)


def test_ca_validity_is_ten_and_five_years(ca: CertificateAuthority, clock: FrozenClock) -> None:
    assert ca.root_certificate.not_valid_after_utc == add_years(clock.now(), 10)
    assert ca.issuing_certificate.not_valid_after_utc == add_years(clock.now(), 5)
    root_constraints = ca.root_certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    issuing_constraints = ca.issuing_certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root_constraints.value.ca
    assert root_constraints.critical
    assert issuing_constraints.value.ca
    assert issuing_constraints.value.path_length == 0


def test_seal_certificate_has_end_entity_extensions(ca: CertificateAuthority, clock: FrozenClock) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = ca.issue_seal_certificate(_csr(key), COMPANY, years=3, serial=123456789)
    extensions = leaf.extensions
    constraints = extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert DOCUMENT_SIGNING_EKU in extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    issuer_ski = ca.issuing_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest
    assert (
        extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        == x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    )
    assert leaf.serial_number == 123456789
    assert leaf.public_key() == key.public_key()
    assert leaf.not_valid_after_utc == add_years(clock.now(), 3)
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == COMPANY.uscc
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == COMPANY.name


def test_personal_certificate_masks_the_id_number(ca: CertificateAuthority) -> None:
    subject = PersonSubject("张三", "11010519491231002X", organisation="广州瑞术科技有限公司")
    leaf = ca.issue_seal_certificate(rsa.generate_private_key(65537, 2048).public_key(), subject, years=1)
    serial_attribute = leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    assert serial_attribute == "110105********002X"
    assert "19491231" not in leaf.subject.rfc4514_string()
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "张三"


def test_csr_whose_signature_does_not_verify_is_refused(ca: CertificateAuthority) -> None:
    good = _csr(ec.generate_private_key(ec.SECP256R1()))
    # The last byte belongs to the signature: flipping it breaks only the proof of possession.
    forged = good[:-1] + bytes([good[-1] ^ 0x01])
    with pytest.raises(InvalidInput, match="CSR signature"):
        ca.issue_seal_certificate(forged, COMPANY, years=1)


def test_csr_with_another_keys_signature_is_refused(ca: CertificateAuthority) -> None:
    claimed = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    request = x509.load_der_x509_csr(_csr(claimed))
    # Re-sign the claimed key's request body with a different key.
    spki_swapped = (
        x509.CertificateSigningRequestBuilder().subject_name(request.subject).sign(other, hashes.SHA256())
    )
    tbs_claimed = request.tbs_certrequest_bytes
    forged = spki_swapped.public_bytes(serialization.Encoding.DER).replace(
        spki_swapped.tbs_certrequest_bytes, tbs_claimed
    )
    assert x509.load_der_x509_csr(forged).public_key() == claimed.public_key()
    with pytest.raises(InvalidInput, match="CSR signature"):
        ca.issue_seal_certificate(forged, COMPANY, years=1)


def test_pem_csr_and_spki_der_are_accepted(ca: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem_csr = x509.load_der_x509_csr(_csr(key)).public_bytes(serialization.Encoding.PEM)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for subject_key in (pem_csr, spki):
        assert ca.issue_seal_certificate(subject_key, COMPANY, years=1).public_key() == key.public_key()


@pytest.mark.parametrize(
    "subject_key",
    [
        pytest.param(
            lambda: rsa.generate_private_key(65537, 1024).public_key(),  # noqa: S505 - the weak key is the point
            id="rsa-1024",
        ),
        pytest.param(lambda: ec.generate_private_key(ec.SECP521R1()).public_key(), id="p-521"),
        pytest.param(lambda: b"not a key", id="garbage"),
    ],
)
def test_weak_or_unknown_keys_are_refused(ca: CertificateAuthority, subject_key: object) -> None:
    with pytest.raises(InvalidInput):
        ca.issue_seal_certificate(subject_key(), COMPANY, years=1)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("subject", "years"),
    [
        (OrganisationSubject("", "91110000600037341L"), 1),
        (OrganisationSubject("某公司", "91110000600037341O"), 1),  # O is not in the USCC alphabet
        (PersonSubject("张三", "1101051949123100"), 1),
        (COMPANY, 0),
        (COMPANY, 6),
    ],
)
def test_bad_subjects_and_validity_are_refused(
    ca: CertificateAuthority, subject: OrganisationSubject | PersonSubject, years: int
) -> None:
    with pytest.raises(InvalidInput):
        ca.issue_seal_certificate(ec.generate_private_key(ec.SECP256R1()).public_key(), subject, years=years)


def test_validity_beyond_the_issuing_ca_is_refused(ca: CertificateAuthority, clock: FrozenClock) -> None:
    clock.advance(timedelta(days=4 * 365))
    with pytest.raises(InvalidInput, match="issuing CA expires"):
        ca.issue_seal_certificate(ec.generate_private_key(ec.SECP256R1()).public_key(), COMPANY, years=2)


def test_verify_chain_rejects_foreign_and_expired_certificates(
    tmp_path: Path, ca: CertificateAuthority, clock: FrozenClock
) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other", SECRET, clock)
    foreign = other.issue_seal_certificate(
        ec.generate_private_key(ec.SECP256R1()).public_key(), COMPANY, years=1
    )
    with pytest.raises(CertificateNotTrusted, match="no trusted issuer"):
        ca.verify_chain(foreign)
    own = ca.issue_seal_certificate(ec.generate_private_key(ec.SECP256R1()).public_key(), COMPANY, years=1)
    assert [c.subject for c in ca.verify_chain(own)] == [
        own.subject,
        ca.issuing_certificate.subject,
        ca.root_certificate.subject,
    ]
    with pytest.raises(CertificateNotTrusted, match="not valid at"):
        ca.verify_chain(own, at=clock.now() + timedelta(days=400))


def test_seal_maker_certificate_is_renewed_when_close_to_expiry(tmp_path: Path, clock: FrozenClock) -> None:
    first = CertificateAuthority.load_or_create(tmp_path / "ca", SECRET, clock)
    clock.advance(timedelta(days=365))
    same = CertificateAuthority.load_or_create(tmp_path / "ca", SECRET, clock)
    assert same.seal_maker.certificate == first.seal_maker.certificate
    clock.set(first.seal_maker.certificate.not_valid_after_utc - timedelta(days=30))
    renewed = CertificateAuthority.load_or_create(tmp_path / "ca", SECRET, clock)
    assert renewed.seal_maker.certificate != first.seal_maker.certificate
    assert renewed.root_certificate == first.root_certificate
    assert renewed.verify_chain(renewed.seal_maker.certificate)


def test_rsa_3072_ca_signs_with_rsa(tmp_path: Path) -> None:
    authority = CertificateAuthority.load_or_create(
        tmp_path / "ca", SECRET, SystemClock(), algorithm="rsa-3072"
    )
    root_key = authority.root_certificate.public_key()
    assert isinstance(root_key, rsa.RSAPublicKey)
    assert root_key.key_size == 3072
    assert authority.seal_maker.signature_oid == "1.2.840.113549.1.1.11"


def test_sm2_is_refused_with_an_explanation(tmp_path: Path, clock: FrozenClock) -> None:
    with pytest.raises(InvalidInput, match="SM2"):
        CertificateAuthority.load_or_create(tmp_path / "ca", SECRET, clock, algorithm="sm2")


def test_add_years_moves_leap_day_to_28_february() -> None:
    assert add_years(datetime(2028, 2, 29, tzinfo=UTC), 1) == datetime(2029, 2, 28, tzinfo=UTC)
