"""The CA's revocation: the CRL (nextUpdate set, re-signed on every revocation and when a day
old) and OCSP answers (good, revoked with its reason, unknown issuer, malformed request)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from seal_platform.app import build_platform_services
from seal_platform.clock import FrozenClock
from seal_platform.production.ca import OrganisationSubject
from seal_platform.production.revocation import RevocationReason, current_crl, ocsp_answer, revoke
from seal_platform.seals import certificate_authority
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[PlatformServices]:
    settings = PlatformSettings(
        data_dir=tmp_path / "platform",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db",
        public_base_url="https://seal.example/platform",
    )
    services = build_platform_services(settings, FrozenClock())
    yield services
    await services.db.dispose()


async def seal_certificate(services: PlatformServices) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = OrganisationSubject("广州瑞术科技有限公司", "91110000600037341L")
    return (await certificate_authority(services)).issue_seal_certificate(key.public_key(), subject, years=1)


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    return request.public_bytes(serialization.Encoding.DER)


async def test_certificates_point_to_the_crl_and_the_ocsp_responder(services: PlatformServices) -> None:
    cert = await seal_certificate(services)
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name == [x509.UniformResourceIdentifier("https://seal.example/platform/ca/crl")]
    access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert access[0].access_location == x509.UniformResourceIdentifier(
        "https://seal.example/platform/ca/ocsp"
    )


async def test_the_crl_has_a_next_update_and_is_re_signed_when_a_day_old(services: PlatformServices) -> None:
    assert isinstance(services.clock, FrozenClock)
    first = await current_crl(services)
    crl = x509.load_der_x509_crl(first)
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == timedelta(days=2)
    # the issuing CA key is an issuer key type; public_key() is typed with every key type
    assert crl.is_signature_valid((await certificate_authority(services)).issuing_certificate.public_key())  # type: ignore[arg-type]
    services.clock.advance(timedelta(hours=23))
    assert await current_crl(services) == first, "less than a day old: served as it is"
    services.clock.advance(timedelta(hours=2))
    later = x509.load_der_x509_crl(await current_crl(services))
    assert later.last_update_utc == services.clock.now().replace(microsecond=0)


async def test_a_revocation_publishes_a_new_crl_with_the_first_reason(services: PlatformServices) -> None:
    cert = await seal_certificate(services)
    serial = format(cert.serial_number, "x")
    await revoke(services, serial, RevocationReason.KEY_LOST)
    await revoke(services, serial, RevocationReason.CANCELLED)  # a second revocation changes nothing
    crl = x509.load_der_x509_crl(await current_crl(services))
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.key_compromise
    )
    assert len(list(crl)) == 1


async def test_ocsp_answers_good_then_revoked_unknown_for_another_issuer_and_refuses_garbage(
    services: PlatformServices,
) -> None:
    ca = await certificate_authority(services)
    cert = await seal_certificate(services)
    good = ocsp.load_der_ocsp_response(
        await ocsp_answer(services, ocsp_request(cert, ca.issuing_certificate))
    )
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    await revoke(services, format(cert.serial_number, "x"), RevocationReason.RENEWED)
    revoked = ocsp.load_der_ocsp_response(
        await ocsp_answer(services, ocsp_request(cert, ca.issuing_certificate))
    )
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason is x509.ReasonFlags.superseded
    other = ocsp.load_der_ocsp_response(await ocsp_answer(services, ocsp_request(cert, ca.root_certificate)))
    assert other.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    garbage = ocsp.load_der_ocsp_response(await ocsp_answer(services, b"not an OCSP request"))
    assert garbage.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
