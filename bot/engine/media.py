"""Files passing through chats, stored by content hash; kinds are told by content, not name."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime
from pathlib import Path

from bot.engine.messages import FileRef
from bot.errors import StorageError
from dbkit.blobs import BlobBackend, BlobCorrupt, BlobNotFound, BlobUnavailable, LocalBlobBackend, SealedBlobs
from dbkit.envelope import Keyring

log = logging.getLogger(__name__)

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
    stored by one worker is read by any other."""

    def __init__(self, backend: BlobBackend, keyring: Keyring | None = None) -> None:
        self.backend = backend
        self.keyring = keyring
        self.blobs = SealedBlobs(backend, keyring, fanout=1)

    async def put(self, data: bytes, *, filename: str, content_type: str) -> FileRef:
        try:
            media_id = await self.blobs.put_content(data)
        except BlobUnavailable as exc:
            raise StorageError(f"media store unavailable: {exc}") from exc
        return FileRef(media_id, safe_filename(filename), content_type, len(data))

    async def get(self, media_id: str) -> bytes:
        if not re.fullmatch(r"[0-9a-f]{64}", media_id):
            raise StorageError("bad media id")
        try:
            return await self.blobs.get_content(media_id)
        except BlobNotFound as exc:
            raise StorageError(f"media {media_id} not found") from exc
        except BlobCorrupt as exc:
            # Logged once here; the caller answers the user as for a missing file (send again).
            log.warning("media %s refused: %s", media_id, exc)
            raise StorageError(f"media {media_id} does not open: {exc}") from exc
        except BlobUnavailable as exc:
            raise StorageError(f"media store unavailable: {exc}") from exc

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Delete files last written before ``cutoff`` (retention: the platform keeps its own
        copy of every scan it accepted; this store only passes files through chats)."""
        return await self.blobs.purge_content_written_before(cutoff)

    async def rotate(self) -> int:
        """Re-encrypt every file not under the current key (plain ones too); each file is
        replaced on its own, so an interrupted run leaves every file readable."""
        return await self.blobs.rotate()


class LocalMediaStore(SharedMediaStore):
    """Files under ``root/ab/<sha256>``, 0600 in 0700 directories (the embedded default)."""

    def __init__(self, root: Path, keyring: Keyring | None = None) -> None:
        super().__init__(LocalBlobBackend(root), keyring)
        self.root = root


class MemoryMediaStore:
    """For tests and benchmarks: the same contract, in memory."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, data: bytes, *, filename: str, content_type: str) -> FileRef:
        media_id = hashlib.sha256(data).hexdigest()
        self.files[media_id] = data
        return FileRef(media_id, safe_filename(filename), content_type, len(data))

    async def get(self, media_id: str) -> bytes:
        try:
            return self.files[media_id]
        except KeyError as exc:
            raise StorageError(f"media {media_id} not found") from exc
