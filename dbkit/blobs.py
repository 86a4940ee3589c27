"""The shared storage port: every file that used to live under one host's data directory.

Chat media (the bot), the platform's documents and its CA material go through ``SealedBlobs``
on top of one ``BlobBackend``:

- ``LocalBlobBackend``: files under a directory (the embedded default, one host);
- ``SqlBlobBackend``: rows of a blob table in the side's own database (``blob_table``), the
  default on PostgreSQL, so several hosts share files with nothing more than the database;
- an S3 bucket (``dbkit.s3.S3Backend``, path-style and SigV4-signed).

``SealedBlobs`` encrypts every value before it leaves the process (AES-256-GCM with the key id
beside it, ``dbkit.envelope``), binds it to its name (the AAD), and checks content-addressed
values against their SHA-256 when read, whatever the backend returns. A content value may
carry its own expiry, sealed inside it, so the one read that fetches it also refuses it.

``database_lock`` serialises one critical section across every process on a database (the
CA created once): a PostgreSQL advisory lock, or on SQLite (one host) a lock file beside the
database file.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from dbkit.envelope import EnvelopeError, Keyring, write_private

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Leads the plain bytes of a content value stored with an expiry: ``<this><ISO time>\n<data>``.
_EXPIRES = b"\x00expires "


def chosen_backend(setting: str, database_url: str) -> str:
    """The backend a ``storage_backend`` setting names; ``auto`` is the database on PostgreSQL
    (several hosts share it) and local files on the embedded SQLite default."""
    if setting != "auto":
        return setting
    return "database" if database_url.startswith("postgresql") else "local"


class BlobError(Exception):
    """Base of the port's errors; adapters above translate them into their side's errors."""


class BlobNotFound(BlobError):
    pass


class BlobCorrupt(BlobError):
    """A stored value does not open with its key or its content does not match its hash."""


class BlobUnavailable(BlobError):
    """The backend cannot be reached or refused the operation."""


class BlobExpired(BlobNotFound):
    """A content value past the expiry it was stored with: it reads as gone."""


def check_key(key: str) -> str:
    if len(key) > 255 or not _KEY.match(key) or ".." in key:
        raise BlobNotFound(f"bad blob key {key!r}")
    return key


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobBackend(Protocol):
    """Raw bytes by key (``a/b/c``); what it holds is already sealed."""

    async def write(self, key: str, data: bytes) -> None: ...

    async def read(self, key: str) -> bytes:
        """The stored bytes; ``BlobNotFound`` when there are none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def keys(self, *, written_before: datetime | None = None, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix`` (sorted), or those last written before
        ``written_before``."""
        ...

    async def aclose(self) -> None:
        """Let go of what the backend holds open (an S3 backend's connections); called once
        at shutdown by whoever built it, and harmless twice."""
        ...


class LocalBlobBackend:
    """Files under ``root/<key>``, written atomically, 0600 in 0700 directories."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def aclose(self) -> None:
        return None  # nothing held open between calls

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def write(self, key: str, data: bytes) -> None:
        path = self._path(key)

        def run() -> None:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.root, 0o700)
            write_private(path, data)

        await asyncio.to_thread(run)

    async def read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def keys(self, *, written_before: datetime | None = None, prefix: str = "") -> list[str]:
        limit = written_before.timestamp() if written_before is not None else None
        # Only the directory the prefix names is walked.
        top = self.root / prefix.rpartition("/")[0]

        def run() -> list[str]:
            found = []
            for path in top.rglob("*"):
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix) or not path.is_file():
                    continue
                if any(part.startswith(".") for part in key.split("/")):
                    continue
                if limit is not None and path.stat().st_mtime >= limit:
                    continue
                found.append(key)
            return sorted(found)

        return await asyncio.to_thread(run)


def blob_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """The blob table of one side's database (its migration creates the same columns)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("namespace", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


class SqlBlobBackend:
    """Rows ``(namespace, key) -> data`` in a table made by ``blob_table``."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: sa.Table,
        namespace: str,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.namespace = namespace
        self._now = now or (lambda: datetime.now(UTC))

    async def write(self, key: str, data: bytes) -> None:
        t = self.table
        values = {"namespace": self.namespace, "key": check_key(key), "data": data, "size": len(data)}
        values["updated_at"] = self._now()
        insert = postgresql.insert(t) if self.engine.dialect.name == "postgresql" else sqlite.insert(t)
        statement = insert.values(**values).on_conflict_do_update(
            index_elements=[t.c.namespace, t.c.key],
            set_={"data": values["data"], "size": values["size"], "updated_at": values["updated_at"]},
        )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(statement)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise BlobUnavailable(f"blob table write failed: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        return None  # the database engine is its owner's to dispose

    def _where(self, key: str) -> sa.ColumnElement[bool]:
        t = self.table
        return sa.and_(t.c.namespace == self.namespace, t.c.key == check_key(key))

    async def read(self, key: str) -> bytes:
        try:
            async with self.engine.connect() as conn:
                data = await conn.scalar(sa.select(self.table.c.data).where(self._where(key)))
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise BlobUnavailable(f"blob table read failed: {type(exc).__name__}") from exc
        if data is None:
            raise BlobNotFound(key)
        return bytes(data)

    async def exists(self, key: str) -> bool:
        try:
            async with self.engine.connect() as conn:
                found = await conn.scalar(sa.select(self.table.c.size).where(self._where(key)))
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise BlobUnavailable(f"blob table read failed: {type(exc).__name__}") from exc
        return found is not None

    async def delete(self, key: str) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(sa.delete(self.table).where(self._where(key)))
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise BlobUnavailable(f"blob table delete failed: {type(exc).__name__}") from exc

    async def keys(self, *, written_before: datetime | None = None, prefix: str = "") -> list[str]:
        t = self.table
        query = sa.select(t.c.key).where(t.c.namespace == self.namespace).order_by(t.c.key)
        if prefix:
            query = query.where(t.c.key.startswith(prefix, autoescape=True))
        if written_before is not None:
            query = query.where(t.c.updated_at < written_before)
        try:
            async with self.engine.connect() as conn:
                return list((await conn.scalars(query)).all())
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise BlobUnavailable(f"blob table read failed: {type(exc).__name__}") from exc


class SealedBlobs:
    """Encryption, naming and hash checks over a backend.

    Content-addressed values (``put_content``/``get_content``) are named by the SHA-256 of
    their plain bytes, spread over ``fanout`` directory levels of two hex characters
    (``ab/cd/<digest>`` with 2), so the same file is stored once and a reader checks what it
    got. Named values (``put_named``/``get_named``) are for material with a fixed name (the
    CA's keys). Without a key ring values are stored as they are.

    A content value put with ``expires_at`` keeps it inside, sealed with the data (its name
    stays the hash of the data alone): ``get_content`` refuses it from then on (``BlobExpired``,
    by ``now``) with the same one read.
    """

    def __init__(
        self,
        backend: BlobBackend,
        keyring: Keyring | None,
        *,
        fanout: int = 1,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.backend = backend
        self.keyring = keyring
        self.fanout = fanout
        self._now = now or (lambda: datetime.now(UTC))

    async def aclose(self) -> None:
        await self.backend.aclose()

    def content_key(self, digest: str) -> str:
        if not _DIGEST.match(digest):
            raise BlobNotFound(f"bad content digest {digest!r}")
        return "/".join([digest[2 * i : 2 * i + 2] for i in range(self.fanout)] + [digest])

    def _seal(self, data: bytes, aad: str) -> bytes:
        return self.keyring.seal(data, aad.encode()) if self.keyring is not None else data

    def _open(self, stored: bytes, aad: str) -> bytes:
        if self.keyring is None:
            return stored
        try:
            return self.keyring.open(stored, aad.encode())
        except EnvelopeError as exc:
            raise BlobCorrupt(f"{aad}: {exc}") from exc

    async def put_content(self, data: bytes, *, expires_at: datetime | None = None) -> str:
        """Store ``data`` once under its hash. With ``expires_at`` the value is (re)written with
        that expiry inside, so a copy stored before without one expires too."""
        digest = sha256_hex(data)
        key = self.content_key(digest)
        if expires_at is not None:
            stamped = _EXPIRES + expires_at.isoformat().encode() + b"\n" + data
            await self.backend.write(key, self._seal(stamped, digest))
        elif not await self.backend.exists(key):
            await self.backend.write(key, self._seal(data, digest))
        return digest

    async def get_content(self, digest: str) -> bytes:
        data = self._open(await self.backend.read(self.content_key(digest)), digest)
        if sha256_hex(data) == digest:
            return data
        if data.startswith(_EXPIRES):
            stamp, _, rest = data.removeprefix(_EXPIRES).partition(b"\n")
            if sha256_hex(rest) == digest:
                try:
                    expires_at = datetime.fromisoformat(stamp.decode())
                except ValueError as exc:
                    raise BlobCorrupt(f"{digest}: unreadable expiry") from exc
                if expires_at <= self._now():
                    raise BlobExpired(f"{digest} expired at {expires_at.isoformat()}")
                return rest
        raise BlobCorrupt(f"{digest}: content does not match its hash")

    async def delete_content(self, digest: str) -> bool:
        """Remove a content-addressed value (retention, account deletion); ``False`` when it
        was not there."""
        key = self.content_key(digest)
        if not await self.backend.exists(key):
            return False
        await self.backend.delete(key)
        return True

    async def put_named(self, name: str, data: bytes) -> None:
        await self.backend.write(check_key(name), self._seal(data, name))

    async def get_named(self, name: str) -> bytes:
        return self._open(await self.backend.read(check_key(name)), name)

    async def get_named_or_none(self, name: str) -> bytes | None:
        try:
            return await self.get_named(name)
        except BlobNotFound:
            return None

    def _aad_of(self, key: str) -> str:
        tail = key.rsplit("/", 1)[-1]
        return tail if _DIGEST.match(tail) and key == self.content_key(tail) else key

    async def rotate(self) -> int:
        """Re-encrypt every value not under the current key (plain ones too), one write each:
        an interrupted run leaves every value readable with the old or the new key."""
        if self.keyring is None:
            return 0
        count = 0
        for key in await self.backend.keys():
            stored = await self.backend.read(key)
            if self.keyring.is_current(stored):
                continue
            aad = self._aad_of(key)
            await self.backend.write(key, self._seal(self._open(stored, aad), aad))
            count += 1
        return count

    async def purge_content_written_before(self, cutoff: datetime) -> int:
        count = 0
        for key in await self.backend.keys(written_before=cutoff):
            if self._aad_of(key) != key:
                await self.backend.delete(key)
                count += 1
        return count


_memory_locks: dict[tuple[str, str], asyncio.Lock] = {}


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(b"dbkit-lock\x00" + name.encode()).digest()[:8], "big", signed=True)


@asynccontextmanager
async def database_lock(engine: AsyncEngine, name: str) -> AsyncIterator[None]:
    """Hold ``name`` exclusively across every process using this database.

    PostgreSQL: a session-level advisory lock on a connection of its own (released when the
    block ends, or by the server if this process dies). SQLite serves one host: an exclusive
    ``flock`` on a file beside the database, released likewise by the kernel on death.
    """
    if engine.dialect.name == "postgresql":
        ident = _lock_id(name)
        try:
            conn = await engine.connect()
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise BlobUnavailable("lock connection unavailable") from exc
        released = False
        try:
            await conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ident})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ident})
                await conn.commit()
                released = True
        finally:
            if not released:
                # Cancelled or failed while locking or unlocking: the session may hold the lock,
                # and back in the pool it would keep it for good: closing the session frees it.
                await conn.invalidate()
            await conn.close()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        lock = _memory_locks.setdefault((str(engine.url), name), asyncio.Lock())
        async with lock:
            yield
        return
    path = Path(f"{database}.{re.sub(r'[^A-Za-z0-9_-]', '_', name)}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = await asyncio.to_thread(open, path, "a+b")
    try:
        await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
