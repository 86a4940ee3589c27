"""Files passing through chats, stored by content hash; kinds are told by content, not name."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

from bot.engine.messages import FileRef
from bot.errors import StorageError

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
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, media_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", media_id):
            raise StorageError("bad media id")
        return self.root / media_id[:2] / media_id

    async def put(self, data: bytes, *, filename: str, content_type: str) -> FileRef:
        media_id = hashlib.sha256(data).hexdigest()
        path = self._path(media_id)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)

        await asyncio.to_thread(write)
        return FileRef(media_id, safe_filename(filename), content_type, len(data))

    async def get(self, media_id: str) -> bytes:
        path = self._path(media_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise StorageError(f"media {media_id} not found") from exc


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
