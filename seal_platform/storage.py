"""Blob storage addressed by content: the SHA-256 of the bytes is the key.

Content addressing makes writes idempotent (the same scan uploaded twice is stored once) and
lets a reader detect corruption. ``LocalBlobStore`` is the embedded default; ``S3BlobStore``
speaks the S3 REST API (path-style, AWS Signature V4) through httpx, so any S3-compatible
store (MinIO, Ceph, COS, OSS in S3 mode) works without an SDK.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

import httpx

from dbkit.envelope import EnvelopeError, Keyring, write_private
from seal_platform.clock import Clock
from seal_platform.errors import NotFound, UpstreamError
from seal_platform.settings import PlatformSettings


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Store ``data``; returns its SHA-256 hex digest, the key to read it back with."""
        ...

    async def get(self, digest: str) -> bytes: ...

    async def delete(self, digest: str) -> bool:
        """Remove the blob (retention, account deletion); ``False`` when it was not there.
        The caller checks that no other document row still names the digest."""
        ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_digest(digest: str) -> str:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise NotFound("blob not found", digest=digest)
    return digest


class LocalBlobStore:
    """Files under ``root/ab/cd/<digest>``, written atomically (temp file + rename). With a key
    ring the files are encrypted (the digest is the plain bytes' hash) and private (0600/0700)."""

    def __init__(self, root: Path, keyring: Keyring | None = None) -> None:
        self.root = root
        self.keyring = keyring

    def _path(self, digest: str) -> Path:
        digest = _check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def _put_sync(self, data: bytes, digest: str) -> None:
        path = self._path(digest)
        if path.exists():
            return
        sealed = self.keyring.seal(data, digest.encode()) if self.keyring is not None else data
        self._write_sealed(path, sealed)

    def _write_sealed(self, path: Path, stored: bytes) -> None:
        """Atomically (temp file + rename), 0600 in 0700 directories."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        path.parent.parent.mkdir(exist_ok=True, mode=0o700)
        write_private(path, stored)

    def _get_sync(self, digest: str) -> bytes:
        try:
            data = self._path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound("blob not found", digest=digest) from exc
        if self.keyring is not None:
            try:
                data = self.keyring.open(data, digest.encode())
            except EnvelopeError as exc:
                raise UpstreamError("stored blob does not open", code="blob_corrupt", digest=digest) from exc
        if sha256_hex(data) != digest:
            raise UpstreamError("stored blob is corrupt", code="blob_corrupt", digest=digest)
        return data

    async def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        await asyncio.to_thread(self._put_sync, data, digest)
        return digest

    async def get(self, digest: str) -> bytes:
        return await asyncio.to_thread(self._get_sync, digest)

    async def delete(self, digest: str) -> bool:
        path = self._path(digest)

        def remove() -> bool:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            return True

        return await asyncio.to_thread(remove)

    async def rotate(self) -> int:
        """Re-encrypt every blob not under the current key (plain ones too), one atomic
        replace per file: an interrupted run leaves every blob readable with the old or new key."""
        keyring = self.keyring
        if keyring is None:
            return 0

        def run() -> int:
            count = 0
            for path in sorted(self.root.glob("??/??/*")):
                if len(path.name) != 64 or path.name.startswith("."):
                    continue
                stored = path.read_bytes()
                if not keyring.is_current(stored):
                    plain = keyring.open(stored, path.name.encode())
                    self._write_sealed(path, keyring.seal(plain, path.name.encode()))
                    count += 1
            return count

        return await asyncio.to_thread(run)


class S3BlobStore:
    """An S3-compatible bucket, path-style URLs, requests signed with AWS Signature V4."""

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
    ) -> None:
        self._endpoint = endpoint_url.rstrip("/")
        self._bucket = bucket
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._clock = clock
        self._prefix = prefix
        self._client = httpx.AsyncClient(transport=transport, timeout=30)

    def _url_path(self, digest: str) -> str:
        return f"/{self._bucket}/{quote(self._prefix + digest, safe='/')}"

    def signed_headers(self, method: str, path: str, payload: bytes, now: datetime) -> dict[str, str]:
        host = urlsplit(self._endpoint).netloc
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        payload_hash = sha256_hex(payload)
        headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                method,
                path,
                "",
                "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                signed,
                payload_hash,
            ]
        )
        scope = f"{day}/{self._region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256_hex(canonical.encode())])
        key = ("AWS4" + self._secret_key).encode()
        for part in (day, self._region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        return headers

    async def _send(self, method: str, digest: str, payload: bytes = b"") -> httpx.Response:
        path = self._url_path(_check_digest(digest))
        headers = self.signed_headers(method, path, payload, self._clock.now())
        try:
            return await self._client.request(method, self._endpoint + path, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise UpstreamError("object store unreachable", code="storage_unavailable") from exc

    async def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        response = await self._send("PUT", digest, data)
        if response.status_code >= 300:
            raise UpstreamError(
                "object store refused the write", code="storage_failed", status=response.status_code
            )
        return digest

    async def get(self, digest: str) -> bytes:
        response = await self._send("GET", digest)
        if response.status_code == 404:
            raise NotFound("blob not found", digest=digest)
        if response.status_code >= 300:
            raise UpstreamError(
                "object store refused the read", code="storage_failed", status=response.status_code
            )
        if sha256_hex(response.content) != digest:
            raise UpstreamError("stored blob is corrupt", code="blob_corrupt", digest=digest)
        return response.content

    async def delete(self, digest: str) -> bool:
        response = await self._send("DELETE", digest)
        if response.status_code == 404:
            return False
        if response.status_code >= 300:
            raise UpstreamError(
                "object store refused the delete", code="storage_failed", status=response.status_code
            )
        return True


def blob_store_from_settings(settings: PlatformSettings, clock: Clock) -> BlobStore:
    """The configured store (the bootstrap builds it once; tests pass their own). Local files
    are sealed at rest under the platform's secret key (older keys still open them)."""
    if settings.storage_backend == "s3":
        return S3BlobStore(
            endpoint_url=settings.s3_endpoint_url,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            clock=clock,
        )
    keyring = Keyring.from_secrets(
        settings.secret_key.get_secret_value(), settings.old_secret_keys.get_secret_value()
    )
    return LocalBlobStore(Path(settings.data_dir) / "blobs", keyring)
