"""Files passing through chats, stored by content hash; kinds are told by content, not name."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from datetime import datetime
from pathlib import Path

from bot.engine.messages import FileRef
from bot.errors import StorageError
from dbkit.envelope import EnvelopeError, Keyring, write_private

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


class LocalMediaStore:
    """Files under ``root/ab/<sha256>``: encrypted with the key ring (scans are personal data),
    0600 in 0700 directories. The id is the hash of the plain bytes, so the same upload is
    stored once and a reader can check what it got."""

    def __init__(self, root: Path, keyring: Keyring | None = None) -> None:
        self.root = root
        self.keyring = keyring

    def _path(self, media_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", media_id):
            raise StorageError("bad media id")
        return self.root / media_id[:2] / media_id

    def _seal(self, data: bytes, media_id: str) -> bytes:
        return self.keyring.seal(data, media_id.encode()) if self.keyring else data

    def _write(self, path: Path, stored: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        write_private(path, stored)

    async def put(self, data: bytes, *, filename: str, content_type: str) -> FileRef:
        media_id = hashlib.sha256(data).hexdigest()
        path = self._path(media_id)

        def write() -> None:
            if not path.exists():
                self._write(path, self._seal(data, media_id))

        await asyncio.to_thread(write)
        return FileRef(media_id, safe_filename(filename), content_type, len(data))

    async def get(self, media_id: str) -> bytes:
        path = self._path(media_id)
        try:
            stored = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise StorageError(f"media {media_id} not found") from exc
        if self.keyring is None:
            return stored
        try:
            return self.keyring.open(stored, media_id.encode())
        except EnvelopeError as exc:
            raise StorageError(f"media {media_id} does not open: {exc}") from exc

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Delete files last written before ``cutoff`` (retention: the platform keeps its own
        copy of every scan it accepted; this store only passes files through chats)."""
        limit = cutoff.timestamp()

        def run() -> int:
            count = 0
            for path in self.root.glob("??/*"):
                if re.fullmatch(r"[0-9a-f]{64}", path.name) and path.stat().st_mtime < limit:
                    path.unlink(missing_ok=True)
                    count += 1
            return count

        return await asyncio.to_thread(run)

    async def rotate(self) -> int:
        """Re-encrypt every file not under the current key (plain ones too); each file is
        replaced atomically, so an interrupted run leaves every file readable."""
        keyring = self.keyring
        if keyring is None:
            return 0

        def run() -> int:
            count = 0
            for path in sorted(self.root.glob("??/*")):
                if not re.fullmatch(r"[0-9a-f]{64}", path.name):
                    continue
                stored = path.read_bytes()
                if keyring.is_current(stored):
                    continue
                plain = keyring.open(stored, path.name.encode())
                self._write(path, keyring.seal(plain, path.name.encode()))
                count += 1
            return count

        return await asyncio.to_thread(run)


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
