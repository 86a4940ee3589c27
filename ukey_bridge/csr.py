"""A PKCS#10 certificate request whose signature is made by the private key on the token.

The private key never leaves the UKey, so the request is assembled by hand: DER of the
CertificationRequestInfo, a signature from the token, then the outer SEQUENCE.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ukey_bridge import ck
from ukey_bridge.backend import KeyProfile, ObjectHandle, TokenSession
from ukey_bridge.errors import TokenOperationFailed
from ukey_bridge.keys import PublicKey

# the asn1crypto names a subject may use; the service sends the subject with these keys
SUBJECT_FIELDS = (
    "country_name",
    "state_or_province_name",
    "locality_name",
    "organization_name",
    "organizational_unit_name",
    "common_name",
    "serial_number",
)


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """PKCS#11 gives ECDSA signatures as r||s; X.509 and CMS want a DER ECDSA-Sig-Value."""
    if len(raw) % 2:
        raise TokenOperationFailed("the token returned an ECDSA signature of odd length")
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


async def sign_sha256(
    session: TokenSession, private_key: ObjectHandle, public_key: PublicKey, data: bytes, profile: KeyProfile
) -> bytes:
    """An X.509-style SHA-256 signature (DER for ECDSA, PKCS#1 v1.5 for RSA) made on the token."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if profile.sign == ck.CKM_ECDSA:
            # raw CKM_ECDSA signs a digest computed here
            raw = await session.sign(private_key, hashlib.sha256(data).digest(), profile.sign)
        else:
            raw = await session.sign(private_key, data, profile.sign)
        return ecdsa_raw_to_der(raw)
    return await session.sign(private_key, data, profile.sign)


async def build_csr(
    session: TokenSession,
    private_key: ObjectHandle,
    public_key: PublicKey,
    subject: Mapping[str, str],
    profile: KeyProfile,
) -> bytes:
    unknown = set(subject) - set(SUBJECT_FIELDS)
    if unknown:
        raise ValueError(f"unsupported subject fields: {sorted(unknown)}")
    ordered = {name: subject[name] for name in SUBJECT_FIELDS if name in subject}
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": asn1_x509.Name.build(ordered),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(spki),
            "attributes": [],
        }
    )
    algorithm = "sha256_ecdsa" if isinstance(public_key, ec.EllipticCurvePublicKey) else "sha256_rsa"
    signature = await sign_sha256(session, private_key, public_key, info.dump(), profile)
    request = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": algorithm},
            "signature": signature,
        }
    )
    return bytes(request.dump())
