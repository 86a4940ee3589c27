"""Whoever builds the platform's services closes them once at shutdown: the object store's
connections as well as the database's (an S3 client left open leaks its sockets on every
restart of a standalone platform and every ``sealbot`` command that opens the platform)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.clock import SystemClock
from seal_platform.settings import PlatformSettings
from seal_platform.storage import S3BlobStore
from tests.fakes.s3 import FakeS3, RecordingTransport


def _s3_documents(transport: httpx.AsyncBaseTransport) -> S3BlobStore:
    return S3BlobStore(
        endpoint_url="http://s3.test",
        bucket="documents",
        region="cn-north-1",
        access_key="AK",
        secret_key="SK",
        clock=SystemClock(),
        transport=transport,
    )


async def test_closing_the_services_closes_the_object_store_and_the_database(
    platform_settings: PlatformSettings,
) -> None:
    transport = RecordingTransport(FakeS3(SystemClock().now))
    services = build_platform_services(platform_settings, blob_store=_s3_documents(transport))
    digest = await services.blob_store.put(b"%PDF-1.7 a business licence")
    assert await services.blob_store.get(digest) == b"%PDF-1.7 a business licence"
    await services.aclose()
    assert transport.closed == 1


@pytest.mark.parametrize("owns", [True, False])
async def test_a_standalone_platform_closes_the_services_it_was_built_with_when_it_stops(
    platform_settings: PlatformSettings, owns: bool
) -> None:
    transport = RecordingTransport(FakeS3(SystemClock().now))
    services = build_platform_services(platform_settings, blob_store=_s3_documents(transport))
    app: FastAPI = create_platform_app(services, owns_services=owns)
    async with app.router.lifespan_context(app):
        pass
    assert transport.closed == (1 if owns else 0)  # a mounted platform's are its host's to close
    if not owns:
        await services.aclose()
