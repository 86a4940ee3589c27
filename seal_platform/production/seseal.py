"""GB/T 38540-2020 electronic seals (SESeal, version 4) in DER.

    SESeal ::= SEQUENCE {
        eSealInfo   SES_SealInfo,
        cert        OCTET STRING,        -- the seal maker's certificate (DER)
        signAlgID   OBJECT IDENTIFIER,
        signedValue BIT STRING }         -- the maker's signature over DER(eSealInfo)
    SES_SealInfo ::= SEQUENCE {
        header   SES_Header,             -- { ID IA5String "ES", version INTEGER 4, Vid IA5String }
        esID     IA5String,
        property SES_ESPropertyInfo,
        picture  SES_ESPictrueInfo,      -- (sic: the standard's spelling)
        extDatas ExtensionDatas OPTIONAL }

``SES_ESPropertyInfo.type`` is the seal kind: 1 for an organisation seal (单位印章), 2 for a
personal seal (个人印章). ``certListType`` 1 means ``certList`` holds the holders' DER
certificates; type 2 (certificate digests) is parsed as unsupported, since this platform
always embeds the certificates.

Signing uses ecdsa-with-SHA256 or sha256WithRSAEncryption. SM3withSM2 (1.2.156.10197.1.501) is
the standard's own algorithm; it is accepted only through a pluggable signer or verifier,
because pyca/cryptography implements neither SM2 nor SM3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, ClassVar, Protocol

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from seal_platform.errors import InvalidInput
from seal_platform.production.ca import (
    BUILTIN_ALGORITHMS,
    SM3_WITH_SM2_OID,
    CertificateNotTrusted,
    SigningAlgorithm,
    verify_certificate_chain,
)

SESEAL_VERSION = 4
SESEAL_HEADER_ID = "ES"
CERT_LIST_TYPE_CERTIFICATES = 1
CERT_LIST_TYPE_DIGESTS = 2
PICTURE_TYPES = frozenset({"PNG", "GIF", "JPG", "BMP", "SVG", "OFD"})


class SealKind(IntEnum):
    """``SES_ESPropertyInfo.type``."""

    ORGANISATION = 1  # 单位印章
    PERSONAL = 2  # 个人印章


class SealVerificationError(InvalidInput):
    """The seal is malformed, its signature does not verify, or it is not valid now."""

    code = "seal_invalid"


# -- ASN.1 ----------------------------------------------------------------------------------


class SESHeader(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("id", core.IA5String),
        ("version", core.Integer),
        ("vid", core.IA5String),
    ]


class CertInfoList(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    _child_spec = core.OctetString


class SESESPropertyInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),
        ("cert_list", CertInfoList),
        ("create_date", core.GeneralizedTime),
        ("valid_start", core.GeneralizedTime),
        ("valid_end", core.GeneralizedTime),
    ]


class SESESPictrueInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("type", core.IA5String),
        ("data", core.OctetString),
        ("width", core.Integer),
        ("height", core.Integer),
    ]


class ExtData(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class ExtensionDatas(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    _child_spec = ExtData


class SESSealInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("header", SESHeader),
        ("es_id", core.IA5String),
        ("property", SESESPropertyInfo),
        ("picture", SESESPictrueInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SESeal(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("e_seal_info", SESSealInfo),
        ("cert", core.OctetString),
        ("sign_alg_id", core.ObjectIdentifier),
        ("signed_value", core.OctetBitString),
    ]


# -- signing seams ------------------------------------------------------------------------


class SealSigner(Protocol):
    """Who signs the seal: the platform's seal maker (``ca.SealMaker``) or a plug-in.

    No built-in signer produces SM3withSM2; a plug-in signer that does is used as is.
    """

    @property
    def signature_oid(self) -> str: ...

    @property
    def certificate_der(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


def builtin_verifiers() -> dict[str, SigningAlgorithm]:
    """Verifiers by signature OID (RSA key sizes share one OID, the key decides the size)."""
    verifiers: dict[str, SigningAlgorithm] = {}
    for algorithm in BUILTIN_ALGORITHMS.values():
        verifiers.setdefault(algorithm.signature_oid, algorithm)
    return verifiers


@dataclass(frozen=True)
class SealPicture:
    data: bytes
    width_mm: int
    height_mm: int
    type: str = "PNG"


@dataclass(frozen=True)
class ExtensionData:
    oid: str
    value: bytes
    critical: bool = False


@dataclass(frozen=True)
class ParsedSeal:
    version: int
    vid: str
    es_id: str
    kind: SealKind
    name: str
    holder_certificates: tuple[x509.Certificate, ...]
    created_at: datetime
    valid_start: datetime
    valid_end: datetime
    picture: SealPicture
    extensions: tuple[ExtensionData, ...]
    maker_certificate: x509.Certificate
    signature_oid: str
    signature: bytes
    signed_data: bytes  # DER of eSealInfo exactly as it appears in the seal


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput(f"{what} must carry a time zone")
    # GeneralizedTime here has whole seconds: sub-second parts would not survive a round trip.
    return moment.astimezone(UTC).replace(microsecond=0)


def _ia5(value: str, what: str) -> str:
    if not value or not value.isascii() or not value.isprintable() or len(value) > 128:
        raise InvalidInput(f"{what} must be 1 to 128 printable ASCII characters", field=what)
    return value


def make_seseal(
    *,
    signer: SealSigner,
    es_id: str,
    kind: SealKind,
    name: str,
    holder_certificates: Sequence[x509.Certificate],
    picture: SealPicture,
    created_at: datetime,
    valid_start: datetime,
    valid_end: datetime,
    vid: str = "sealbot",
    extensions: Sequence[ExtensionData] = (),
) -> bytes:
    """Build SES_SealInfo, sign its DER with the seal maker's key, return the SESeal DER."""
    if not name.strip():
        raise InvalidInput("the seal name is empty", field="name")
    if not holder_certificates:
        raise InvalidInput("a seal lists at least one holder certificate")
    if picture.type not in PICTURE_TYPES:
        raise InvalidInput(f"picture type must be one of {sorted(PICTURE_TYPES)}", type=picture.type)
    if not picture.data or picture.width_mm <= 0 or picture.height_mm <= 0:
        raise InvalidInput("the seal picture needs data and a positive size in millimetres")
    start, end = _utc(valid_start, "valid_start"), _utc(valid_end, "valid_end")
    if end <= start:
        raise InvalidInput("the seal's validity ends before it starts")
    seal_info = SESSealInfo(
        {
            "header": {"id": SESEAL_HEADER_ID, "version": SESEAL_VERSION, "vid": _ia5(vid, "vid")},
            "es_id": _ia5(es_id, "es_id"),
            "property": {
                "type": int(kind),
                "name": name.strip(),
                "cert_list_type": CERT_LIST_TYPE_CERTIFICATES,
                "cert_list": [certificate.public_bytes(Encoding.DER) for certificate in holder_certificates],
                "create_date": _utc(created_at, "created_at"),
                "valid_start": start,
                "valid_end": end,
            },
            "picture": {
                "type": picture.type,
                "data": picture.data,
                "width": picture.width_mm,
                "height": picture.height_mm,
            },
        }
    )
    if extensions:
        seal_info["ext_datas"] = [
            {"extn_id": item.oid, "critical": item.critical, "extn_value": item.value} for item in extensions
        ]
    to_sign = seal_info.dump()
    seal = SESeal(
        {
            "e_seal_info": seal_info,
            "cert": signer.certificate_der,
            "sign_alg_id": signer.signature_oid,
            "signed_value": signer.sign(to_sign),
        }
    )
    return bytes(seal.dump())


def _load_certificate(der: bytes) -> x509.Certificate:
    """A certificate with every field the verifier reads decoded now.

    cryptography decodes names, validity, extensions and the key lazily, so a corrupt field
    would otherwise raise ``ValueError`` deep inside chain building instead of here, where it
    is reported as a malformed seal.
    """
    try:
        certificate = x509.load_der_x509_certificate(der)
        _ = (certificate.subject, certificate.issuer, certificate.extensions, certificate.public_key())
        _ = (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    except Exception as exc:
        # Untrusted bytes: cryptography signals bad certificates with many unrelated classes
        # (ValueError, InvalidVersion, DuplicateExtension, ...), found by fuzzing; all of them
        # mean the same thing here.
        raise SealVerificationError(f"malformed certificate in the seal: {exc}") from exc
    return certificate


def parse_seseal(der: bytes) -> ParsedSeal:
    """Decode a SESeal without judging it. Raises ``SealVerificationError`` if malformed."""
    try:
        seal = SESeal.load(der, strict=True)
        info = seal["e_seal_info"]
        header = info["header"]
        prop = info["property"]
        picture = info["picture"]
        version = header["version"].native
        header_id = header["id"].native
        if header_id != SESEAL_HEADER_ID:
            raise SealVerificationError(f"not an electronic seal: header ID is {header_id!r}")
        if version != SESEAL_VERSION:
            raise SealVerificationError(f"unsupported SESeal version {version}; this reads version 4")
        cert_list_type = prop["cert_list_type"].native
        if cert_list_type != CERT_LIST_TYPE_CERTIFICATES:
            raise SealVerificationError(f"certListType {cert_list_type} is not supported (1 = certificates)")
        try:
            kind = SealKind(prop["type"].native)
        except ValueError:
            raise SealVerificationError(f"unknown seal type {prop['type'].native}") from None
        holders = tuple(_load_certificate(item.native) for item in prop["cert_list"])
        maker = _load_certificate(seal["cert"].native)
        extensions = tuple(
            ExtensionData(item["extn_id"].dotted, item["extn_value"].native, bool(item["critical"].native))
            for item in (info["ext_datas"] if info["ext_datas"].native is not None else [])
        )
        return ParsedSeal(
            version=version,
            vid=header["vid"].native,
            es_id=info["es_id"].native,
            kind=kind,
            name=prop["name"].native,
            holder_certificates=holders,
            created_at=prop["create_date"].native,
            valid_start=prop["valid_start"].native,
            valid_end=prop["valid_end"].native,
            picture=SealPicture(
                data=picture["data"].native,
                width_mm=picture["width"].native,
                height_mm=picture["height"].native,
                type=picture["type"].native,
            ),
            extensions=extensions,
            maker_certificate=maker,
            signature_oid=seal["sign_alg_id"].dotted,
            signature=seal["signed_value"].native,
            signed_data=info.dump(),
        )
    except SealVerificationError:
        raise
    except (ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
        raise SealVerificationError(f"malformed SESeal: {exc}") from exc


def verify_seseal(
    der: bytes,
    trust_roots: Sequence[x509.Certificate],
    *,
    at: datetime,
    intermediates: Sequence[x509.Certificate] = (),
    verifiers: Mapping[str, SigningAlgorithm] | None = None,
) -> ParsedSeal:
    """Parse and check a seal: the maker's signature over eSealInfo, the maker certificate's
    chain to ``trust_roots``, the seal's own validity period at ``at``, and that each holder
    certificate chains to the same roots. Raises ``SealVerificationError``."""
    parsed = parse_seseal(der)
    known = builtin_verifiers() if verifiers is None else dict(verifiers)
    verifier = known.get(parsed.signature_oid)
    if verifier is None:
        hint = (
            " (SM3withSM2 needs a pluggable SM2 verifier)" if parsed.signature_oid == SM3_WITH_SM2_OID else ""
        )
        raise SealVerificationError(f"unsupported signature algorithm {parsed.signature_oid}{hint}")
    try:
        maker_key: Any = parsed.maker_certificate.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        # cryptography loads certificates lazily: a corrupt key only shows here, as ValueError.
        raise SealVerificationError("the seal maker certificate has an unsupported key") from exc
    if not verifier.verify(maker_key, parsed.signature, parsed.signed_data):
        raise SealVerificationError("the seal signature does not verify: the seal was altered or forged")
    try:
        verify_certificate_chain(parsed.maker_certificate, intermediates, trust_roots, at)
    except CertificateNotTrusted as exc:
        raise SealVerificationError(f"the seal maker is not trusted: {exc.message}") from exc
    _check_maker_usage(parsed.maker_certificate)
    if not parsed.valid_start <= at <= parsed.valid_end:
        raise SealVerificationError(
            "the seal is outside its validity period",
            valid_start=parsed.valid_start.isoformat(),
            valid_end=parsed.valid_end.isoformat(),
        )
    for holder in parsed.holder_certificates:
        try:
            verify_certificate_chain(holder, intermediates, trust_roots, at)
        except CertificateNotTrusted as exc:
            raise SealVerificationError(f"a holder certificate is not trusted: {exc.message}") from exc
    return parsed


def _check_maker_usage(certificate: x509.Certificate) -> None:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.digital_signature:
        raise SealVerificationError("the seal maker certificate may not make signatures")
