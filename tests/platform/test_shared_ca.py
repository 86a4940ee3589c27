"""One CA for every platform process on every host.

Two platform apps (each with its own engine, pool and data directory, as on two hosts) start at
the same moment on one database and both need the CA at once: exactly one CA is created, under
the database lock, sealed in the shared store, and both sign with it. On PostgreSQL the store
is the platform's blob table (``PLATFORM_STORAGE_BACKEND=auto``); on SQLite (one host) files.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509

from dbkit.envelope import key_id_of
from seal_platform import migrate
from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.clock import FrozenClock
from seal_platform.production.ca import CA_FILES
from seal_platform.production.revocation import RevocationReason, revoke
from seal_platform.seals import certificate_authority
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.storage import blobs_table
from tests.contract.postgres import fresh_databases

SECRET = "the-platform-secret-0123456789"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/platform.db"
        return
    async with fresh_databases(1, "sealbot_ca") as (url,):
        yield url


def host(url: str, data_dir: Path) -> PlatformServices:
    settings = PlatformSettings(
        database_url=url,
        # One host on SQLite shares its data directory; on PostgreSQL each host has its own.
        data_dir=data_dir,
        secret_key=SECRET,  # type: ignore[arg-type]
        public_base_url="https://seal.example/platform",
    )
    return build_platform_services(settings, FrozenClock())


async def test_two_platforms_starting_at_once_create_exactly_one_ca(
    database_url: str, tmp_path: Path
) -> None:
    await migrate.upgrade(database_url)
    postgres = database_url.startswith("postgresql")
    first = host(database_url, tmp_path / ("host1" if postgres else "shared"))
    second = host(database_url, tmp_path / ("host2" if postgres else "shared"))
    try:
        apps = [create_platform_app(services) for services in (first, second)]
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://platform.test")
            for app in apps
        ]
        # Both need the CA at the same moment (the CRL is signed by it).
        answers = await asyncio.gather(*(client.get("/ca/crl") for client in clients))
        for client in clients:
            await client.aclose()
        assert [answer.status_code for answer in answers] == [200, 200]
        one, two = await certificate_authority(first), await certificate_authority(second)
        assert one.root_certificate == two.root_certificate
        assert one.issuing_certificate == two.issuing_certificate
        assert one.seal_maker.certificate == two.seal_maker.certificate
        for answer in answers:
            crl = x509.load_der_x509_crl(answer.content)
            assert crl.is_signature_valid(one.issuing_certificate.public_key())  # type: ignore[arg-type]

        # A third process started later loads the same CA rather than making one.
        third = host(database_url, tmp_path / ("host3" if postgres else "shared"))
        try:
            assert (await certificate_authority(third)).root_certificate == one.root_certificate
        finally:
            await third.db.dispose()

        if postgres:
            # Nothing under either host's data directory: the CA lives in the platform's database,
            # each file sealed under the platform's key.
            assert not (tmp_path / "host1" / "ca").exists()
            assert not (tmp_path / "host2" / "ca").exists()
            async with first.db.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.select(blobs_table.c.key, blobs_table.c.data).where(
                            blobs_table.c.namespace == "ca"
                        )
                    )
                ).all()
            stored = {key: bytes(data) for key, data in rows}
            assert set(CA_FILES) <= set(stored)
            assert all(key_id_of(data) is not None for data in stored.values())
            assert all(b"BEGIN" not in data for data in stored.values())
    finally:
        await first.db.dispose()
        await second.db.dispose()


async def test_a_revocation_made_on_one_host_is_in_the_other_hosts_answers(
    database_url: str, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from seal_platform.production.ca import OrganisationSubject
    from seal_platform.production.revocation import current_crl

    await migrate.upgrade(database_url)
    postgres = database_url.startswith("postgresql")
    first = host(database_url, tmp_path / ("host1" if postgres else "shared"))
    second = host(database_url, tmp_path / ("host2" if postgres else "shared"))
    try:
        ca = await certificate_authority(first)
        subject = OrganisationSubject("广州瑞术科技有限公司", "91110000600037341L")
        cert = ca.issue_seal_certificate(
            ec.generate_private_key(ec.SECP256R1()).public_key(), subject, years=1
        )
        async with first.db.session() as session:  # revoked in the transaction of its change
            await revoke(session, first, format(cert.serial_number, "x"), RevocationReason.KEY_LOST)
            await session.commit()
        crl = x509.load_der_x509_crl(await current_crl(second))
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    finally:
        await first.db.dispose()
        await second.db.dispose()
