"""The platform's files in the shared store: documents addressed by content, and the CA.

Content addressing makes writes idempotent (the same scan uploaded twice is stored once) and
lets a reader detect corruption. Where the bytes go is ``PLATFORM_STORAGE_BACKEND``:

- ``local``: files under ``PLATFORM_DATA_DIR`` (``blobs/``, ``ca/``), one host;
- ``database``: the ``platform_blobs`` table of the platform's own database, so every platform
  process on every host sees the same documents and the same CA;
- ``s3``: an S3-compatible bucket (``dbkit.s3``);
- ``auto`` (default): ``database`` on PostgreSQL, ``local`` on SQLite.

Every backend holds values sealed under the platform's secret key (``dbkit.envelope``); the
port is ``dbkit.blobs``, this module translates its errors into the platform's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dbkit.blobs import (
    BlobBackend,
    BlobCorrupt,
    BlobNotFound,
    BlobUnavailable,
    LocalBlobBackend,
    SealedBlobs,
    SqlBlobBackend,
    blob_table,
    chosen_backend,
    sha256_hex,
)
from dbkit.envelope import Keyring
from dbkit.s3 import S3Backend
from seal_platform.clock import Clock
from seal_platform.db import Base
from seal_platform.errors import NotFound, UpstreamError
from seal_platform.settings import PlatformSettings

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "PlatformStorage",
    "S3BlobStore",
    "sha256_hex",
    "storage_from_settings",
]

blobs_table = blob_table(Base.metadata, "platform_blobs")


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Store ``data``; returns its SHA-256 hex digest, the key to read it back with."""
        ...

    async def get(self, digest: str) -> bytes: ...

    async def delete(self, digest: str) -> bool:
        """Remove the blob (retention, account deletion); ``False`` when it was not there.
        The caller checks that no other document row still names the digest."""
        ...

    async def aclose(self) -> None:
        """At shutdown: let go of the connections the store holds (``BlobBackend.aclose``)."""
        ...


class ContentBlobStore:
    """``BlobStore`` over the shared port, its errors in the platform's terms."""

    def __init__(self, blobs: SealedBlobs) -> None:
        self.blobs = blobs

    async def put(self, data: bytes) -> str:
        try:
            return await self.blobs.put_content(data)
        except BlobUnavailable as exc:
            raise UpstreamError("object store refused the write", code="storage_failed") from exc

    async def get(self, digest: str) -> bytes:
        try:
            return await self.blobs.get_content(digest)
        except BlobNotFound as exc:
            raise NotFound("blob not found", digest=digest) from exc
        except BlobCorrupt as exc:
            raise UpstreamError("stored blob is corrupt", code="blob_corrupt", digest=digest) from exc
        except BlobUnavailable as exc:
            raise UpstreamError("object store unreachable", code="storage_unavailable") from exc

    async def delete(self, digest: str) -> bool:
        try:
            return await self.blobs.delete_content(digest)
        except BlobUnavailable as exc:
            raise UpstreamError("object store refused the delete", code="storage_failed") from exc

    async def rotate(self) -> int:
        """Re-encrypt every blob not under the current key (see ``SealedBlobs.rotate``)."""
        return await self.blobs.rotate()

    async def aclose(self) -> None:
        await self.blobs.aclose()


class LocalBlobStore(ContentBlobStore):
    """Files under ``root/ab/cd/<digest>``, 0600 in 0700 directories, sealed with ``keyring``."""

    def __init__(self, root: Path, keyring: Keyring | None = None) -> None:
        super().__init__(SealedBlobs(LocalBlobBackend(root), keyring, fanout=2))
        self.root = root


class S3BlobStore(ContentBlobStore):
    """Documents in an S3-compatible bucket under ``prefix``, keyed by their digest."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        clock: Clock,
        prefix: str = "blobs/",
        transport: httpx.AsyncBaseTransport | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.backend = S3Backend(
            endpoint_url=endpoint_url,
            bucket=bucket,
            region=region,
            access_key=access_key,
            secret_key=secret_key,
            now=clock.now,
            prefix=prefix,
            transport=transport,
        )
        super().__init__(SealedBlobs(self.backend, keyring, fanout=0))

    def _url_path(self, digest: str) -> str:
        return self.backend.url_path(digest)

    def signed_headers(self, method: str, path: str, payload: bytes, now: datetime) -> dict[str, str]:
        return self.backend.signed_headers(method, path, payload, now)


@dataclass(frozen=True)
class PlatformStorage:
    """The two stores the bootstrap builds from settings: documents and the CA's material."""

    documents: ContentBlobStore
    ca: SealedBlobs
    backend: str


def storage_from_settings(settings: PlatformSettings, clock: Clock, engine: AsyncEngine) -> PlatformStorage:
    """The configured stores, sealed under the platform's secret key (older keys still open)."""
    keyring = Keyring.from_secrets(
        settings.secret_key.get_secret_value(), settings.old_secret_keys.get_secret_value()
    )
    backend = chosen_backend(settings.storage_backend, settings.database_url)
    if backend == "database" and not settings.database_url.startswith("postgresql"):
        # Revocations are stored from inside an open order transaction: on SQLite a second
        # writing connection would wait for that transaction's own write lock.
        raise ValueError("PLATFORM_STORAGE_BACKEND=database needs a PostgreSQL PLATFORM_DATABASE_URL")
    if backend == "s3" and not (settings.s3_endpoint_url and settings.s3_bucket):
        raise ValueError(
            "PLATFORM_S3_ENDPOINT_URL, PLATFORM_S3_BUCKET: required when PLATFORM_STORAGE_BACKEND=s3"
        )
    documents: BlobBackend
    ca: BlobBackend
    fanout = 2
    if backend == "s3":

        def s3(prefix: str) -> S3Backend:
            return S3Backend(
                endpoint_url=settings.s3_endpoint_url,
                bucket=settings.s3_bucket,
                region=settings.s3_region,
                access_key=settings.s3_access_key.get_secret_value(),
                secret_key=settings.s3_secret_key.get_secret_value(),
                now=clock.now,
                prefix=prefix,
            )

        documents, ca, fanout = s3("blobs/"), s3("ca/"), 0
    elif backend == "database":
        documents = SqlBlobBackend(engine, blobs_table, "documents", now=clock.now)
        ca = SqlBlobBackend(engine, blobs_table, "ca", now=clock.now)
    else:
        documents = LocalBlobBackend(Path(settings.data_dir) / "blobs")
        ca = LocalBlobBackend(Path(settings.data_dir) / "ca")
    return PlatformStorage(
        documents=ContentBlobStore(SealedBlobs(documents, keyring, fanout=fanout)),
        ca=SealedBlobs(ca, keyring, fanout=0),
        backend=backend,
    )
