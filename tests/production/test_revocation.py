"""The CA's revocation: the CRL (nextUpdate set, re-signed on every revocation and when a day
old) and OCSP answers (good, revoked with its reason, unknown issuer, malformed request), all
read from the platform database (migrated to head, as at start)."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from seal_platform import migrate as platform_migrate
from seal_platform.app import build_platform_services
from seal_platform.clock import FrozenClock
from seal_platform.db import Base, Database
from seal_platform.production.ca import OrganisationSubject
from seal_platform.production.revocation import RevocationReason, current_crl, ocsp_answer, revoke
from seal_platform.seals import certificate_authority
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from tests.contract.postgres import PG_URL, fresh_schema, schema_engine
from tests.platform.conftest import import_all_platform_modules


def _settings(data_dir: Path, database_url: str) -> PlatformSettings:
    return PlatformSettings(
        _env_file=None,
        data_dir=data_dir,
        database_url=database_url,
        public_base_url="https://seal.example/platform",
        # the CA's files stay local here: these tests are about revocations, which live in the
        # database whatever the storage (tests/platform/test_shared_ca.py covers shared storage)
        storage_backend="local",
    )


@asynccontextmanager
async def _platform(tmp_path: Path, backend: str) -> AsyncIterator[tuple[PlatformSettings, str | None]]:
    """Settings on a database with the platform's tables: SQLite through the migrations (as at
    start), or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        settings = _settings(tmp_path / "platform", f"sqlite+aiosqlite:///{tmp_path}/p.db")
        await platform_migrate.upgrade(settings.database_url)
        yield settings, None
        return
    async with fresh_schema() as schema:  # also holds the bot's tables, which do not matter here
        import_all_platform_modules()
        engine = schema_engine(schema)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await engine.dispose()
        yield _settings(tmp_path / "platform", PG_URL), schema


def _services(settings: PlatformSettings, schema: str | None, clock: FrozenClock) -> PlatformServices:
    services = build_platform_services(settings, clock)
    if schema is not None:
        services.db = Database(
            settings.database_url, connect_args={"server_settings": {"search_path": schema}}
        )
    return services


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def platform(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[PlatformSettings, str | None]]:
    async with _platform(tmp_path, request.param) as made:
        yield made


@pytest.fixture
async def services(platform: tuple[PlatformSettings, str | None]) -> AsyncIterator[PlatformServices]:
    services = _services(*platform, FrozenClock())
    yield services
    await services.db.dispose()


async def seal_certificate(services: PlatformServices) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = OrganisationSubject("广州瑞术科技有限公司", "91110000600037341L")
    return (await certificate_authority(services)).issue_seal_certificate(key.public_key(), subject, years=1)


async def revoke_now(services: PlatformServices, serial_hex: str, reason: x509.ReasonFlags) -> bool:
    async with services.db.session() as session:
        done = await revoke(session, services, serial_hex, reason)
        await session.commit()
    return done


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
    assert await revoke_now(services, serial, RevocationReason.KEY_LOST)
    # a second revocation changes nothing
    assert not await revoke_now(services, serial, RevocationReason.CANCELLED)
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
    await revoke_now(services, format(cert.serial_number, "x"), RevocationReason.RENEWED)
    revoked = ocsp.load_der_ocsp_response(
        await ocsp_answer(services, ocsp_request(cert, ca.issuing_certificate))
    )
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason is x509.ReasonFlags.superseded
    other = ocsp.load_der_ocsp_response(await ocsp_answer(services, ocsp_request(cert, ca.root_certificate)))
    assert other.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    garbage = ocsp.load_der_ocsp_response(await ocsp_answer(services, b"not an OCSP request"))
    assert garbage.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def _listed(crl_der: bytes, cert: x509.Certificate) -> bool:
    crl = x509.load_der_x509_crl(crl_der)
    return crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


async def test_a_revocation_rolled_back_with_its_transaction_is_never_published(
    services: PlatformServices,
) -> None:
    cert = await seal_certificate(services)
    async with services.db.session() as session:
        await revoke(session, services, format(cert.serial_number, "x"), RevocationReason.CANCELLED)
        await session.rollback()  # the cancellation that revoked it failed
    assert not _listed(await current_crl(services), cert)
    ca = await certificate_authority(services)
    answer = ocsp.load_der_ocsp_response(
        await ocsp_answer(services, ocsp_request(cert, ca.issuing_certificate))
    )
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


async def test_a_revocation_is_in_the_very_next_crl_with_a_higher_number(services: PlatformServices) -> None:
    assert isinstance(services.clock, FrozenClock)
    cert = await seal_certificate(services)
    before = x509.load_der_x509_crl(await current_crl(services))
    services.clock.advance(timedelta(minutes=5))  # well within the day a CRL is served as it is
    await revoke_now(services, format(cert.serial_number, "x"), RevocationReason.RENEWED)
    after_der = await current_crl(services)
    after = x509.load_der_x509_crl(after_der)
    assert _listed(after_der, cert)
    number = after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert await current_crl(services) == after_der, "nothing new: the stored CRL is served"


async def test_another_platform_host_sharing_only_the_database_sees_the_revocation(
    platform: tuple[PlatformSettings, str | None], tmp_path: Path
) -> None:
    """Two hosts with the same CA keys but their own data directories: what one revokes the
    other's CRL and OCSP answers show (a list kept in one host's files would be missed)."""
    settings, schema = platform
    clock = FrozenClock()
    first = _services(settings, schema, clock)
    try:
        cert = await seal_certificate(first)
        ca_copy = tmp_path / "second-host"
        shutil.copytree(settings.data_dir / "ca", ca_copy / "ca")  # the CA keys only, before the revocation
        await revoke_now(first, format(cert.serial_number, "x"), RevocationReason.KEY_LOST)
    finally:
        await first.db.dispose()
    second = _services(settings.model_copy(update={"data_dir": ca_copy}), schema, clock)
    try:
        assert _listed(await current_crl(second), cert)
        answer = ocsp.load_der_ocsp_response(
            await ocsp_answer(
                second, ocsp_request(cert, (await certificate_authority(second)).issuing_certificate)
            )
        )
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_reason is x509.ReasonFlags.key_compromise
    finally:
        await second.db.dispose()


async def test_revocations_of_the_earlier_file_are_imported_once_and_the_file_retired(
    services: PlatformServices,
) -> None:
    cert = await seal_certificate(services)
    legacy = Path(services.settings.data_dir) / "ca" / "revoked.json"
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    legacy.write_text(
        json.dumps({format(cert.serial_number, "x"): {"at": at.isoformat(), "reason": "superseded"}}),
        "utf-8",
    )
    crl = x509.load_der_x509_crl(await current_crl(services))
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == at
    assert not legacy.exists()
    assert legacy.with_name("revoked.json.imported").exists()
    # from the database from now on, also for OCSP
    answer = ocsp.load_der_ocsp_response(
        await ocsp_answer(
            services, ocsp_request(cert, (await certificate_authority(services)).issuing_certificate)
        )
    )
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
