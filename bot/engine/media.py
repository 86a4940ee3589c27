"""Files passing through chats, stored by content hash; kinds are told by content, not name."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bot.engine.messages import FileRef
from bot.errors import MediaExpired, StorageError
from dbkit.blobs import (
    BlobBackend,
    BlobCorrupt,
    BlobExpired,
    BlobNotFound,
    BlobUnavailable,
    LocalBlobBackend,
    SealedBlobs,
)
from dbkit.envelope import Keyring

log = logging.getLogger(__name__)

# A file given a life of its own (a data export: 24 h, not the store's retention) carries its
# expiry inside (``SealedBlobs``), which every read checks; a copy under this prefix, named by
# the file's hash, lets the purge find such files without reading them.
_EXPIRY = "expiry/"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff(data: bytes) -> str:
    """The content type by magic bytes; ``application/octet-stream`` when unknown."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


_SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def safe_filename(name: str) -> str:
    cleaned = _SAFE_NAME.sub("_", Path(name).name)[:80].strip("._")
    return cleaned or "file"


class SharedMediaStore:
    """Chat files in the shared store (``dbkit.blobs``): local files, the bot's database or an
    S3 bucket, sealed with the key ring (scans are personal data). The id is the hash of the
    plain bytes, so the same upload is stored once and a reader checks what it got: a file
    stored by one worker is read by any other.

    A file put with ``expires_at`` (a data export) is refused from then on and deleted by the
    first read or purge after it, whatever the store's retention; the expiry is stored inside
    the file, so every worker refuses it alike, with the one read that fetches it."""

    def __init__(
        self,
        backend: BlobBackend,
        keyring: Keyring | None = None,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.backend = backend
        self.keyring = keyring
        self.now = now or (lambda: datetime.now(UTC))
        self.blobs = SealedBlobs(backend, keyring, fanout=1, now=self.now)

    async def aclose(self) -> None:
        """At shutdown: the backend's connections (an S3 bucket's)."""
        await self.blobs.aclose()

    async def put(
        self, data: bytes, *, filename: str, content_type: str, expires_at: datetime | None = None
    ) -> FileRef:
        try:
            media_id = await self.blobs.put_content(data, expires_at=expires_at)
            if expires_at is not None:
                await self.blobs.put_named(_EXPIRY + media_id, expires_at.isoformat().encode())
        except BlobUnavailable as exc:
            raise StorageError(f"media store unavailable: {exc}") from exc
        return FileRef(media_id, safe_filename(filename), content_type, len(data))

    async def get(self, media_id: str) -> bytes:
        if not re.fullmatch(r"[0-9a-f]{64}", media_id):
            raise StorageError("bad media id")
        try:
            return await self.blobs.get_content(media_id)
        except BlobExpired as exc:
            await self._drop(media_id)
            raise MediaExpired(f"media {media_id} expired") from exc
        except BlobNotFound as exc:
            raise StorageError(f"media {media_id} not found") from exc
        except BlobCorrupt as exc:
            # Logged once here; the caller answers the user as for a missing file (send again).
            log.warning("media %s refused: %s", media_id, exc)
            raise StorageError(f"media {media_id} does not open: {exc}") from exc
        except BlobUnavailable as exc:
            raise StorageError(f"media store unavailable: {exc}") from exc

    async def _expired(self, media_id: str) -> bool:
        stored = await self.blobs.get_named_or_none(_EXPIRY + media_id)
        if stored is None:
            return False
        return datetime.fromisoformat(stored.decode()) <= self.now()

    async def _drop(self, media_id: str) -> None:
        try:
            await self.blobs.delete_content(media_id)
            await self.backend.delete(_EXPIRY + media_id)
        except BlobUnavailable as exc:
            raise StorageError(f"media store unavailable: {exc}") from exc

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Delete files last written before ``cutoff`` (retention: the platform keeps its own
        copy of every scan it accepted; this store only passes files through chats), and every
        file past its own expiry."""
        count = await self.blobs.purge_content_written_before(cutoff)
        for key in await self.backend.keys(prefix=_EXPIRY):
            media_id = key.removeprefix(_EXPIRY)
            try:
                expired = await self._expired(media_id)
            except BlobCorrupt:
                expired = True  # an expiry nobody can read keeps nothing alive
            if expired:
                count += int(await self.blobs.delete_content(media_id))
                await self.backend.delete(key)
        return count

    async def rotate(self) -> int:
        """Re-encrypt every file not under the current key (plain ones too); each file is
        replaced on its own, so an interrupted run leaves every file readable."""
        return await self.blobs.rotate()


class LocalMediaStore(SharedMediaStore):
    """Files under ``root/ab/<sha256>``, 0600 in 0700 directories (the embedded default)."""

    def __init__(
        self, root: Path, keyring: Keyring | None = None, *, now: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(LocalBlobBackend(root), keyring, now=now)
        self.root = root


class MemoryMediaStore:
    """For tests and benchmarks: the same contract, in memory."""

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.expiry: dict[str, datetime] = {}
        self.now = now or (lambda: datetime.now(UTC))

    async def put(
        self, data: bytes, *, filename: str, content_type: str, expires_at: datetime | None = None
    ) -> FileRef:
        media_id = hashlib.sha256(data).hexdigest()
        self.files[media_id] = data
        if expires_at is not None:
            self.expiry[media_id] = expires_at
        return FileRef(media_id, safe_filename(filename), content_type, len(data))

    async def get(self, media_id: str) -> bytes:
        expires_at = self.expiry.get(media_id)
        if expires_at is not None and expires_at <= self.now():
            self.files.pop(media_id, None)
            del self.expiry[media_id]
            raise MediaExpired(f"media {media_id} expired")
        try:
            return self.files[media_id]
        except KeyError as exc:
            raise StorageError(f"media {media_id} not found") from exc
