"""Key pairs and certificates on the token, in the shape the bridge writes them.

Conventions (the platform's production step writes new keys the same way): a key pair, its
certificate and its SESeal share one CKA_ID; the SESeal is a CKO_DATA object labelled
``seseal-<CKA_ID hex>`` under the application name below.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ukey_bridge import ck
from ukey_bridge.backend import KeyAlgorithm, KeyProfile, ObjectHandle, Template, TokenSession
from ukey_bridge.errors import TokenOperationFailed

SESEAL_APPLICATION = "sealbot SESeal"
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class KeyPair:
    key_id: bytes
    public: ObjectHandle
    private: ObjectHandle


@dataclass(frozen=True)
class StoredCertificate:
    handle: ObjectHandle
    key_id: bytes
    der: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    def load(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)


def key_id_for_job(job_id: str) -> bytes:
    """A stable CKA_ID per job, so a rerun finds what an interrupted run made."""
    return hashlib.sha256(f"sealbot-job:{job_id}".encode()).digest()[:20]


def job_label(job_id: str) -> str:
    return f"sealbot-{job_id}"


def seseal_label(key_id: bytes) -> str:
    return f"seseal-{key_id.hex()}"


def key_pair_templates(profile: KeyProfile, key_id: bytes, label: str) -> tuple[Template, Template]:
    public: dict[int, int | bool | bytes | str] = {
        ck.CKA_TOKEN: True,
        ck.CKA_PRIVATE: False,
        ck.CKA_VERIFY: True,
        ck.CKA_ID: key_id,
        ck.CKA_LABEL: label,
    }
    if profile.algorithm is KeyAlgorithm.EC_P256:
        public[ck.CKA_EC_PARAMS] = profile.ec_params
    else:
        public[ck.CKA_MODULUS_BITS] = profile.rsa_bits
        public[ck.CKA_PUBLIC_EXPONENT] = b"\x01\x00\x01"
    private: dict[int, int | bool | bytes | str] = {
        ck.CKA_TOKEN: True,
        ck.CKA_PRIVATE: True,
        ck.CKA_SENSITIVE: True,
        ck.CKA_EXTRACTABLE: False,
        ck.CKA_SIGN: True,
        ck.CKA_ID: key_id,
        ck.CKA_LABEL: label,
    }
    return public, private


def _ec_point(raw: bytes) -> bytes:
    # CKA_EC_POINT should be a DER OCTET STRING, but some modules hand out the bare point
    if raw[:1] == b"\x04" and len(raw) >= 2:
        length = raw[1]
        if length < 0x80 and len(raw) == 2 + length:
            return raw[2:]
        if length == 0x81 and len(raw) >= 3 and len(raw) == 3 + raw[2]:
            return raw[3:]
    return raw


async def read_public_key(session: TokenSession, handle: ObjectHandle) -> PublicKey:
    attributes = await session.get_attributes(
        handle, [ck.CKA_KEY_TYPE, ck.CKA_EC_POINT, ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT]
    )
    key_type = attributes[ck.CKA_KEY_TYPE]
    point = attributes[ck.CKA_EC_POINT]
    modulus = attributes[ck.CKA_MODULUS]
    exponent = attributes[ck.CKA_PUBLIC_EXPONENT]
    if key_type == ck.CKK_EC and isinstance(point, bytes):
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _ec_point(point))
    if key_type == ck.CKK_RSA and isinstance(modulus, bytes) and isinstance(exponent, bytes):
        numbers = rsa.RSAPublicNumbers(int.from_bytes(exponent, "big"), int.from_bytes(modulus, "big"))
        return numbers.public_key()
    raise TokenOperationFailed(f"cannot read a public key of type {key_type!r}")


def same_public_key(a: PublicKey, b: object) -> bool:
    if not isinstance(b, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        return False
    spki = PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(Encoding.DER, spki) == b.public_bytes(Encoding.DER, spki)


async def find_key_pair(
    session: TokenSession, key_id: bytes
) -> tuple[list[ObjectHandle], list[ObjectHandle]]:
    """Public and private key handles with this CKA_ID (private ones need a user login)."""
    public = await session.find_objects({ck.CKA_CLASS: ck.CKO_PUBLIC_KEY, ck.CKA_ID: key_id})
    private = await session.find_objects({ck.CKA_CLASS: ck.CKO_PRIVATE_KEY, ck.CKA_ID: key_id})
    return public, private


async def list_certificates(session: TokenSession) -> list[StoredCertificate]:
    found = []
    for handle in await session.find_objects({ck.CKA_CLASS: ck.CKO_CERTIFICATE}):
        attributes = await session.get_attributes(handle, [ck.CKA_ID, ck.CKA_VALUE])
        key_id, value = attributes[ck.CKA_ID], attributes[ck.CKA_VALUE]
        if isinstance(value, bytes) and value:
            found.append(StoredCertificate(handle, key_id if isinstance(key_id, bytes) else b"", value))
    return found


async def find_seal_objects(session: TokenSession, key_id: bytes) -> list[ObjectHandle]:
    return await session.find_objects({ck.CKA_CLASS: ck.CKO_DATA, ck.CKA_LABEL: seseal_label(key_id)})


async def read_object_value(session: TokenSession, handle: ObjectHandle) -> bytes:
    value = (await session.get_attributes(handle, [ck.CKA_VALUE]))[ck.CKA_VALUE]
    return value if isinstance(value, bytes) else b""


def certificate_template(der: bytes, key_id: bytes, label: str) -> Template:
    cert = x509.load_der_x509_certificate(der)
    return {
        ck.CKA_CLASS: ck.CKO_CERTIFICATE,
        ck.CKA_CERTIFICATE_TYPE: ck.CKC_X_509,
        ck.CKA_TOKEN: True,
        ck.CKA_PRIVATE: False,
        ck.CKA_VALUE: der,
        ck.CKA_SUBJECT: cert.subject.public_bytes(),
        ck.CKA_ID: key_id,
        ck.CKA_LABEL: label,
    }


def seseal_template(der: bytes, key_id: bytes) -> Template:
    return {
        ck.CKA_CLASS: ck.CKO_DATA,
        ck.CKA_TOKEN: True,
        ck.CKA_PRIVATE: False,
        ck.CKA_APPLICATION: SESEAL_APPLICATION,
        ck.CKA_LABEL: seseal_label(key_id),
        ck.CKA_VALUE: der,
    }
