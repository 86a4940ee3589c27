"""The platform's small certificate authority.

Two levels: a root CA (10 years) signs an issuing CA (5 years); the issuing CA signs the seal
holders' certificates (the key pair lives on the applicant's UKey, so only a CSR or a public key
reaches us) and the platform's own "seal maker" certificate, the identity that signs SESeal
structures. Private keys are stored as PKCS#8 PEM encrypted with a passphrase derived from the
platform secret, so a copy of the data directory alone does not give away the CA.

Algorithms: ECDSA P-256 (default) and RSA 2048/3072 ship here. SM2/SM3 (``SM3withSM2``,
1.2.156.10197.1.501) is *not* implemented: pyca/cryptography has no SM2 or SM3. The
``SigningAlgorithm`` protocol is the seam where a provider backed by a GM/T toolkit or a
hardware module could plug in; with none registered, SM2 is refused explicitly.
"""

# Over 600 lines: the platform CA in one place (root and issuing keys sealed at rest,
# certificate profiles, chain verification, revocation addresses), because every certificate
# rule must agree with the chain check that verifies it.

from __future__ import annotations

import base64
import fcntl
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509 import ocsp
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from seal_platform.clock import Clock
from seal_platform.errors import InvalidInput

ECDSA_WITH_SHA256_OID = "1.2.840.10045.4.3.2"
SHA256_WITH_RSA_OID = "1.2.840.113549.1.1.11"
SM3_WITH_SM2_OID = "1.2.156.10197.1.501"
# id-kp-documentSigning (RFC 9336): what a seal certificate is for.
DOCUMENT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

ROOT_CA_YEARS = 10
ISSUING_CA_YEARS = 5
SEAL_MAKER_YEARS = 3
MAX_SEAL_CERTIFICATE_YEARS = 5
# A seal maker certificate this close to its end is replaced at start-up, so that seals made
# just before it expires can still be verified for a while.
SEAL_MAKER_RENEW_BEFORE = timedelta(days=90)
# Tolerate clients whose clock is slightly behind ours.
_BACKDATE = timedelta(minutes=5)
_MAX_SERIAL = 1 << 159


class CertificateNotTrusted(InvalidInput):
    """A certificate does not chain to a trusted root, or is outside its validity."""

    code = "certificate_not_trusted"


class CaStoreError(RuntimeError):
    """The CA directory is unusable (partial, undecryptable, inconsistent): an operator problem."""


class SigningAlgorithm(Protocol):
    """A public-key signature algorithm the CA and the SESeal maker can use.

    ``signature_oid`` names hash+signature together, as SESeal's ``signAlgID`` does.
    An SM2 provider would implement this protocol; none ships because pyca/cryptography has
    neither SM2 nor SM3.
    """

    @property
    def name(self) -> str: ...

    @property
    def signature_oid(self) -> str: ...

    def generate_private_key(self) -> CertificateIssuerPrivateKeyTypes: ...

    def sign(self, private_key: CertificateIssuerPrivateKeyTypes, data: bytes) -> bytes: ...

    def verify(self, public_key: CertificatePublicKeyTypes, signature: bytes, data: bytes) -> bool: ...


@dataclass(frozen=True)
class EcdsaP256:
    name: str = "ecdsa-p256"
    signature_oid: str = ECDSA_WITH_SHA256_OID

    def generate_private_key(self) -> CertificateIssuerPrivateKeyTypes:
        return ec.generate_private_key(ec.SECP256R1())

    def sign(self, private_key: CertificateIssuerPrivateKeyTypes, data: bytes) -> bytes:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise TypeError("ECDSA signing needs an EC private key")
        return private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    def verify(self, public_key: CertificatePublicKeyTypes, signature: bytes, data: bytes) -> bool:
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            return False
        try:
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class RsaPkcs1:
    key_size: int = 2048
    signature_oid: str = SHA256_WITH_RSA_OID

    @property
    def name(self) -> str:
        return f"rsa-{self.key_size}"

    def generate_private_key(self) -> CertificateIssuerPrivateKeyTypes:
        return rsa.generate_private_key(public_exponent=65537, key_size=self.key_size)

    def sign(self, private_key: CertificateIssuerPrivateKeyTypes, data: bytes) -> bytes:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise TypeError("RSA signing needs an RSA private key")
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def verify(self, public_key: CertificatePublicKeyTypes, signature: bytes, data: bytes) -> bool:
        if not isinstance(public_key, rsa.RSAPublicKey):
            return False
        try:
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


BUILTIN_ALGORITHMS: dict[str, SigningAlgorithm] = {
    algorithm.name: algorithm for algorithm in (EcdsaP256(), RsaPkcs1(2048), RsaPkcs1(3072))
}


def algorithm_named(name: str) -> SigningAlgorithm:
    if name in ("sm2", "sm3-with-sm2"):
        raise InvalidInput(
            "SM2 is not available: pyca/cryptography has no SM2/SM3; plug in a SigningAlgorithm",
            name=name,
        )
    try:
        return BUILTIN_ALGORITHMS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown signing algorithm {name!r}; known: {', '.join(sorted(BUILTIN_ALGORITHMS))}",
            name=name,
        ) from None


@dataclass(frozen=True)
class OrganisationSubject:
    """The holder of an enterprise seal: the company and its unified social credit code."""

    name: str
    uscc: str


@dataclass(frozen=True)
class PersonSubject:
    """The holder of a personal (legal representative) seal. The ID number is masked in the
    certificate: certificates travel with every signed document."""

    name: str
    id_number: str
    organisation: str | None = None


SealSubject = OrganisationSubject | PersonSubject

_USCC_FORMAT = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_RESIDENT_ID_FORMAT = re.compile(r"^\d{17}[\dX]$")


def mask_id_number(id_number: str) -> str:
    """Keep the area code and the last four characters: ``110105********002X``."""
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def _clean_name(value: str, what: str) -> str:
    cleaned = value.strip()
    if not cleaned or len(cleaned) > 64:
        raise InvalidInput(f"{what} must have 1 to 64 characters", field=what)
    return cleaned


def _subject_name(subject: SealSubject) -> x509.Name:
    if isinstance(subject, OrganisationSubject):
        name = _clean_name(subject.name, "organisation name")
        uscc = subject.uscc.strip().upper()
        if not _USCC_FORMAT.match(uscc):
            raise InvalidInput("the unified social credit code is not 18 valid characters", field="uscc")
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, uscc),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
    person = _clean_name(subject.name, "person name")
    id_number = subject.id_number.strip().upper()
    if not _RESIDENT_ID_FORMAT.match(id_number):
        raise InvalidInput("the resident ID number is not 17 digits and a check character", field="id_number")
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if subject.organisation:
        attributes.append(
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _clean_name(subject.organisation, "organisation"))
        )
    attributes += [
        # X.520 wants PrintableString here, which has no "*": the masked number is UTF8String.
        x509.NameAttribute(NameOID.SERIAL_NUMBER, mask_id_number(id_number), _type=_ASN1Type.UTF8String),
        x509.NameAttribute(NameOID.COMMON_NAME, person),
    ]
    return x509.Name(attributes)


def add_years(moment: datetime, years: int) -> datetime:
    """Same month and day ``years`` later; 29 February becomes 28 February."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def _ca_name(organisation: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _subject_public_key(subject_key: bytes | CertificatePublicKeyTypes) -> CertificatePublicKeyTypes:
    """Accept a CSR (DER or PEM), a SubjectPublicKeyInfo (DER or PEM) or a key object."""
    public_key = _public_key_from_bytes(subject_key) if isinstance(subject_key, bytes) else subject_key
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1 | ec.SECP384R1):
            raise InvalidInput(f"EC curve {public_key.curve.name} is not accepted; use P-256 or P-384")
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise InvalidInput(f"RSA key of {public_key.key_size} bits is too short; 2048 at least")
    else:
        raise InvalidInput("only EC (P-256, P-384) and RSA public keys are accepted")
    return public_key


def _public_key_from_bytes(data: bytes) -> CertificatePublicKeyTypes:
    is_pem = data.lstrip().startswith(b"-----BEGIN")
    if b"CERTIFICATE REQUEST" in data[:64] or not is_pem:
        try:
            csr = x509.load_pem_x509_csr(data) if is_pem else x509.load_der_x509_csr(data)
        except ValueError:
            csr = None
        if csr is not None:
            try:
                signature_ok = csr.is_signature_valid
            except UnsupportedAlgorithm as exc:
                raise InvalidInput("the CSR uses an unsupported signature algorithm") from exc
            if not signature_ok:
                raise InvalidInput("the CSR signature does not verify: it was not made with its key")
            try:
                return csr.public_key()
            except UnsupportedAlgorithm as exc:
                raise InvalidInput("the CSR carries an unsupported public key type") from exc
    try:
        key = serialization.load_pem_public_key(data) if is_pem else serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInput("not a certificate request or a public key (DER or PEM)") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise InvalidInput("only EC (P-256, P-384) and RSA public keys are accepted")
    return key


def verify_certificate_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime,
) -> list[x509.Certificate]:
    """Check that ``leaf`` chains to one of ``roots`` and every link is valid at ``at``.

    Returns the path, leaf first and root last. Raises ``CertificateNotTrusted``.
    """
    root_ders = {root.public_bytes(serialization.Encoding.DER) for root in roots}
    candidates = [*intermediates, *roots]
    path = [leaf]
    current = leaf
    for _depth in range(8):
        _check_validity(current, at)
        if current.public_bytes(serialization.Encoding.DER) in root_ders:
            if current is not leaf:
                return path
            raise CertificateNotTrusted("a trust anchor is not an end-entity certificate")
        issuer = _find_issuer(current, candidates)
        _check_can_issue(issuer, intermediates_below=len(path) - 1)
        path.append(issuer)
        current = issuer
    raise CertificateNotTrusted("certificate path is too long")


def _check_validity(certificate: x509.Certificate, at: datetime) -> None:
    if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        raise CertificateNotTrusted(
            f"certificate {certificate.subject.rfc4514_string()} is not valid at {at.isoformat()}",
            not_before=certificate.not_valid_before_utc.isoformat(),
            not_after=certificate.not_valid_after_utc.isoformat(),
        )


def _find_issuer(certificate: x509.Certificate, candidates: Sequence[x509.Certificate]) -> x509.Certificate:
    for candidate in candidates:
        if candidate.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return candidate
    raise CertificateNotTrusted(
        f"no trusted issuer signed {certificate.subject.rfc4514_string()}",
        issuer=certificate.issuer.rfc4514_string(),
    )


def _check_can_issue(issuer: x509.Certificate, intermediates_below: int) -> None:
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise CertificateNotTrusted(f"{issuer.subject.rfc4514_string()} is not a CA") from None
    if not constraints.ca:
        raise CertificateNotTrusted(f"{issuer.subject.rfc4514_string()} is not a CA")
    if constraints.path_length is not None and intermediates_below > constraints.path_length:
        raise CertificateNotTrusted(f"{issuer.subject.rfc4514_string()} path length exceeded")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise CertificateNotTrusted(f"{issuer.subject.rfc4514_string()} may not sign certificates")


@dataclass(frozen=True)
class CertifiedKey:
    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes


@dataclass(frozen=True)
class SealMaker:
    """The platform's signing identity for SESeal structures."""

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes
    algorithm: SigningAlgorithm

    @property
    def signature_oid(self) -> str:
        return self.algorithm.signature_oid

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def sign(self, data: bytes) -> bytes:
        return self.algorithm.sign(self.private_key, data)


def derive_key_passphrase(secret: bytes) -> bytes:
    """The passphrase encrypting CA keys at rest, derived (not equal) to the platform secret."""
    if not secret:
        raise CaStoreError("the platform secret is empty: CA keys cannot be protected")
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"sealbot-ca-store", info=b"private-key-passphrase"
    ).derive(secret)
    return base64.urlsafe_b64encode(derived)


_ROOT = "root-ca"
_ISSUING = "issuing-ca"
_MAKER = "seal-maker"


CA_FILES = tuple(f"{name}{suffix}" for name in (_ROOT, _ISSUING, _MAKER) for suffix in (".pem", ".key.pem"))


class _Store:
    """The CA's files by name (``NAME.pem`` certificate, ``NAME.key.pem`` key), in memory:
    read from wherever they are kept, and what changed is written back by the caller."""

    def __init__(self, files: dict[str, bytes], passphrase: bytes, where: str) -> None:
        self.files = dict(files)
        self.changed: dict[str, bytes] = {}
        self._passphrase = passphrase
        self._where = where

    def exists(self, name: str) -> bool:
        present = f"{name}.pem" in self.files, f"{name}.key.pem" in self.files
        if present[0] != present[1]:
            raise CaStoreError(f"{self._where}: only one of {name}.pem and {name}.key.pem exists")
        return present[0]

    def load(self, name: str) -> CertifiedKey:
        certificate = x509.load_pem_x509_certificate(self.files[f"{name}.pem"])
        try:
            key = serialization.load_pem_private_key(self.files[f"{name}.key.pem"], password=self._passphrase)
        except (ValueError, TypeError) as exc:
            raise CaStoreError(
                f"cannot decrypt {self._where}/{name}.key.pem: was the platform secret key changed?"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CaStoreError(f"{self._where}/{name}.key.pem holds an unsupported key type")
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise CaStoreError(f"{self._where}/{name}.key.pem does not belong to {name}.pem")
        return CertifiedKey(certificate, key)

    def save(self, name: str, certified: CertifiedKey) -> None:
        key_pem = certified.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        # Key first: a certificate without its key is the state the loader reports as broken.
        for file_name, data in (
            (f"{name}.key.pem", key_pem),
            (f"{name}.pem", certified.certificate.public_bytes(serialization.Encoding.PEM)),
        ):
            self.files[file_name] = self.changed[file_name] = data


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Several workers may start at once: only one of them creates the CA."""
    with open(directory / ".lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class CertificateAuthority:
    def __init__(
        self,
        root: CertifiedKey,
        issuing: CertifiedKey,
        seal_maker: SealMaker,
        clock: Clock,
        algorithm: SigningAlgorithm,
    ) -> None:
        self._root = root
        self._issuing = issuing
        self._seal_maker = seal_maker
        self._clock = clock
        self._algorithm = algorithm
        # Where relying parties check revocation; set by the platform from its public URL.
        self.crl_url: str | None = None
        self.ocsp_url: str | None = None

    @classmethod
    def load_or_create(
        cls,
        directory: Path,
        secret: bytes,
        clock: Clock,
        *,
        algorithm: SigningAlgorithm | str = "ecdsa-p256",
        organisation: str = "sealbot 电子印章平台",
    ) -> CertificateAuthority:
        """Load the CA from PEM files in ``directory`` (under a file lock), creating it there on
        first use; the platform itself keeps it in its shared store (``seals``)."""
        directory.mkdir(parents=True, exist_ok=True)
        with _directory_lock(directory):
            files = {
                name: (directory / name).read_bytes() for name in CA_FILES if (directory / name).exists()
            }
            authority, changed = cls.assemble(
                files, secret, clock, algorithm=algorithm, organisation=organisation, where=str(directory)
            )
            for name, data in changed.items():
                _write_atomically(directory / name, data, mode=0o600 if name.endswith(".key.pem") else 0o644)
        return authority

    @classmethod
    def assemble(
        cls,
        files: dict[str, bytes],
        secret: bytes,
        clock: Clock,
        *,
        algorithm: SigningAlgorithm | str = "ecdsa-p256",
        organisation: str = "sealbot 电子印章平台",
        where: str = "the CA store",
    ) -> tuple[CertificateAuthority, dict[str, bytes]]:
        """The CA from its stored files (names in ``CA_FILES``), creating the root, issuing CA
        and seal maker when there are none and renewing the seal maker certificate when it nears
        its end; returns the files to store (new or replaced). The caller holds the lock that
        makes this happen once.

        ``algorithm`` applies to keys created now; keys already stored keep theirs.
        """
        chosen = algorithm_named(algorithm) if isinstance(algorithm, str) else algorithm
        store = _Store(files, derive_key_passphrase(secret), where)
        root_exists, issuing_exists = store.exists(_ROOT), store.exists(_ISSUING)
        if root_exists != issuing_exists:
            raise CaStoreError(f"{where}: the root and the issuing CA must both exist or neither")
        now = clock.now()
        if root_exists:
            root, issuing = store.load(_ROOT), store.load(_ISSUING)
            chosen = _algorithm_of(issuing.private_key, chosen)
        else:
            root = _make_root(chosen, organisation, now)
            issuing = _make_issuing(chosen, organisation, root, now)
            store.save(_ROOT, root)
            store.save(_ISSUING, issuing)
        maker: CertifiedKey | None = store.load(_MAKER) if store.exists(_MAKER) else None
        if maker is None or maker.certificate.not_valid_after_utc - now < SEAL_MAKER_RENEW_BEFORE:
            maker = _make_seal_maker(chosen, organisation, issuing, now)
            store.save(_MAKER, maker)
        seal_maker = SealMaker(maker.certificate, maker.private_key, _algorithm_of(maker.private_key, chosen))
        return cls(root, issuing, seal_maker, clock, chosen), store.changed

    @property
    def root_certificate(self) -> x509.Certificate:
        return self._root.certificate

    @property
    def issuing_certificate(self) -> x509.Certificate:
        return self._issuing.certificate

    @property
    def seal_maker(self) -> SealMaker:
        return self._seal_maker

    @property
    def algorithm(self) -> SigningAlgorithm:
        return self._algorithm

    def issue_seal_certificate(
        self,
        subject_key: bytes | CertificatePublicKeyTypes,
        subject: SealSubject,
        *,
        years: int,
        serial: int | None = None,
        not_after: datetime | None = None,
    ) -> x509.Certificate:
        """Certify a seal holder's key (from a CSR, a SubjectPublicKeyInfo or a key object).

        A CSR whose signature does not verify is refused: it proves nothing about the key.
        ``not_after`` replaces ``years`` when a new key takes over a seal's current term
        (reissue, change): the end date stays what the holder paid for.
        """
        if not 1 <= years <= MAX_SEAL_CERTIFICATE_YEARS:
            raise InvalidInput(f"validity must be 1 to {MAX_SEAL_CERTIFICATE_YEARS} years", years=years)
        if serial is not None and not 0 < serial < _MAX_SERIAL:
            raise InvalidInput("the serial number must be positive and below 2**159", serial=serial)
        public_key = _subject_public_key(subject_key)
        name = _subject_name(subject)
        now = self._clock.now()
        if not_after is None:
            not_after = add_years(now, years)
        elif not_after <= now:
            raise InvalidInput("the certificate would end before it starts", not_after=not_after.isoformat())
        if not_after > self._issuing.certificate.not_valid_after_utc:
            raise InvalidInput(
                "the issuing CA expires before the requested validity ends",
                issuing_ca_not_after=self._issuing.certificate.not_valid_after_utc.isoformat(),
            )
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(self._issuing.certificate.subject)
            .public_key(public_key)
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
        )
        builder = _end_entity_extensions(builder, public_key, self._issuing.certificate)
        builder = _revocation_pointers(builder, self.crl_url, self.ocsp_url)
        return _sign(builder, self._issuing.private_key)

    def sign_crl(
        self, revoked: Sequence[RevokedEntry], *, number: int, this_update: datetime, next_update: datetime
    ) -> x509.CertificateRevocationList:
        """A CRL of the issuing CA listing ``revoked``, valid until ``next_update``."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._issuing.certificate.subject)
            .last_update(this_update)
            .next_update(next_update)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(_aki(self._issuing.certificate), critical=False)
        )
        for entry in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(entry.revoked_at)
                .add_extension(x509.CRLReason(entry.reason), critical=False)
                .build()
            )
        return builder.sign(self._issuing.private_key, hashes.SHA256())

    def ocsp_response(
        self,
        request_der: bytes,
        status_of: Callable[[int], RevokedEntry | None],
        *,
        this_update: datetime,
        next_update: datetime,
    ) -> bytes:
        """An OCSP response (RFC 6960) signed by the issuing CA for the first certificate asked."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            serial = request.serial_number
            algorithm = request.hash_algorithm
            name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
        except (ValueError, UnsupportedAlgorithm):
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            ).public_bytes(serialization.Encoding.DER)
        issuer = self._issuing.certificate
        ours = _issuer_hashes(issuer, algorithm) == (name_hash, key_hash)
        entry = status_of(serial) if ours else None
        status = (
            ocsp.OCSPCertStatus.UNKNOWN
            if not ours
            else ocsp.OCSPCertStatus.REVOKED
            if entry is not None
            else ocsp.OCSPCertStatus.GOOD
        )
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=key_hash,
            serial_number=serial,
            algorithm=algorithm,
            cert_status=status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=entry.revoked_at if entry is not None else None,
            revocation_reason=entry.reason if entry is not None else None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer).certificates([issuer])
        return builder.sign(self._issuing.private_key, hashes.SHA256()).public_bytes(
            serialization.Encoding.DER
        )

    def verify_chain(
        self, certificate: x509.Certificate, at: datetime | None = None
    ) -> list[x509.Certificate]:
        """Path leaf -> issuing CA -> root, checked at ``at`` (default: now)."""
        return verify_certificate_chain(
            certificate, [self._issuing.certificate], [self._root.certificate], at or self._clock.now()
        )

    def chain_pem(self) -> bytes:
        """The issuing CA then the root, as PEM: what a verifier needs besides the leaf."""
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM)
            for c in (self._issuing.certificate, self._root.certificate)
        )


def _algorithm_of(key: CertificateIssuerPrivateKeyTypes, preferred: SigningAlgorithm) -> SigningAlgorithm:
    """The algorithm matching a stored key (a restart with another setting keeps the old keys)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return preferred if preferred.signature_oid == ECDSA_WITH_SHA256_OID else EcdsaP256()
    if isinstance(key, rsa.RSAPrivateKey):
        return RsaPkcs1(key.key_size)
    return preferred


def _sign(builder: x509.CertificateBuilder, key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    # SHA-256 for every certificate: the strength P-256 and RSA-2048/3072 are paired with.
    return builder.sign(key, hashes.SHA256())


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


def _issuer_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of RFC 6960 CertID for ``issuer``."""
    name = hashes.Hash(algorithm)
    name.update(issuer.subject.public_bytes())
    key = hashes.Hash(algorithm)
    key.update(
        issuer.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        if isinstance(issuer.public_key(), ec.EllipticCurvePublicKey)
        else _rsa_public_key_der(issuer)
    )
    return name.finalize(), key.finalize()


def _rsa_public_key_der(issuer: x509.Certificate) -> bytes:
    return issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def _revocation_pointers(
    builder: x509.CertificateBuilder, crl_url: str | None, ocsp_url: str | None
) -> x509.CertificateBuilder:
    if crl_url:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
    return builder


def _ski(public_key: CertificatePublicKeyTypes) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _ca_extensions(
    builder: x509.CertificateBuilder, public_key: CertificatePublicKeyTypes, path_length: int
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(public_key), critical=False)
    )


def _end_entity_extensions(
    builder: x509.CertificateBuilder,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate,
    extended_usages: Iterable[x509.ObjectIdentifier] = (
        DOCUMENT_SIGNING_EKU,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ),
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(list(extended_usages)), critical=False)
        .add_extension(_ski(public_key), critical=False)
        .add_extension(_aki(issuer), critical=False)
    )


def _make_root(algorithm: SigningAlgorithm, organisation: str, now: datetime) -> CertifiedKey:
    key = algorithm.generate_private_key()
    name = _ca_name(organisation, f"{organisation} Root CA")
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(add_years(now, ROOT_CA_YEARS))
    )
    builder = _ca_extensions(builder, key.public_key(), path_length=1)
    return CertifiedKey(_sign(builder, key), key)


def _make_issuing(
    algorithm: SigningAlgorithm, organisation: str, root: CertifiedKey, now: datetime
) -> CertifiedKey:
    key = algorithm.generate_private_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(organisation, f"{organisation} Seal Issuing CA"))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(add_years(now, ISSUING_CA_YEARS))
    )
    builder = _ca_extensions(builder, key.public_key(), path_length=0).add_extension(
        _aki(root.certificate), critical=False
    )
    return CertifiedKey(_sign(builder, root.private_key), key)


def _make_seal_maker(
    algorithm: SigningAlgorithm, organisation: str, issuing: CertifiedKey, now: datetime
) -> CertifiedKey:
    key = algorithm.generate_private_key()
    not_after = min(add_years(now, SEAL_MAKER_YEARS), issuing.certificate.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(organisation, f"{organisation} SESeal Maker"))
        .issuer_name(issuing.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
    )
    builder = _end_entity_extensions(
        builder, key.public_key(), issuing.certificate, extended_usages=(DOCUMENT_SIGNING_EKU,)
    )
    return CertifiedKey(_sign(builder, issuing.private_key), key)
