"""One contract for every backend of the shared storage port (``dbkit.blobs``): local files,
the blob table on SQLite and on PostgreSQL, and S3 (the in-memory bucket of
``tests.fakes.s3`` behind httpx.MockTransport; no network).

Each test uses two instances of the backend, as two workers on two hosts hold them: what one
stores, the other reads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.engine.media import SharedMediaStore
from bot.engine.tables import blobs as bot_blobs
from bot.errors import MediaExpired, StorageError
from bot.testing import ManualClock, create_schema
from dbkit.blobs import BlobBackend, BlobCorrupt, BlobNotFound, LocalBlobBackend, SealedBlobs, SqlBlobBackend
from dbkit.engine import make_engine
from dbkit.envelope import Keyring, key_id_of
from dbkit.s3 import S3Backend
from tests.contract.postgres import fresh_schema, schema_engine
from tests.fakes.s3 import FakeS3, RecordingTransport

OLD = Keyring.from_secrets("the-old-secret-0123456789", purpose=b"contract")
NEW = Keyring.from_secrets("the-new-secret-0123456789", "the-old-secret-0123456789", purpose=b"contract")


@dataclass
class Workers:
    one: BlobBackend
    two: BlobBackend
    # Make what ``key`` holds look written ``age`` ago (file time, row time or object time).
    age: Callable[[str, timedelta], Awaitable[None]]
    # The time the backend stamps writes with.
    now: Callable[[], datetime]


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


def s3_backend(clock: Clock, transport: httpx.AsyncBaseTransport) -> S3Backend:
    """A backend on the bucket the S3 fake behind ``transport`` holds."""
    return S3Backend(
        endpoint_url="http://s3.test",
        bucket="sealbot",
        region="cn-north-1",
        access_key="AK",
        secret_key="SK",
        now=clock.now,
        prefix="media/",
        transport=transport,
    )


@pytest.fixture(params=["local", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "s3"])
async def workers(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Workers]:
    clock = Clock()
    if request.param == "local":
        root = tmp_path / "blobs"

        async def age_file(key: str, age: timedelta) -> None:
            stamp = (datetime.now(UTC) - age).timestamp()
            os.utime(root / key, (stamp, stamp))

        yield Workers(LocalBlobBackend(root), LocalBlobBackend(root), age_file, lambda: datetime.now(UTC))
        return
    if request.param == "s3":
        fake = FakeS3(clock.now, access_key="AK")

        def s3() -> S3Backend:
            return s3_backend(clock, httpx.MockTransport(fake.handle))

        async def age_object(key: str, age: timedelta) -> None:
            path = f"/sealbot/media/{key}"
            fake.objects[path] = (fake.objects[path][0], clock.now() - age)

        yield Workers(s3(), s3(), age_object, clock.now)
        return

    async def age_row(key: str, age: timedelta) -> None:
        # A direct write, allowed here: the blob store's own table, aged as the S3 fake above
        # ages its objects (the sweep under test reads ``updated_at``).
        engine = engines[0]
        async with engine.begin() as conn:
            table = bot_blobs
            await conn.execute(table.update().where(table.c.key == key).values(updated_at=clock.now() - age))

    if request.param == "sqlite":
        engines = [make_engine(f"sqlite+aiosqlite:///{tmp_path}/blobs.db") for _ in range(2)]
        await create_schema(engines[0])
        yield Workers(
            SqlBlobBackend(engines[0], bot_blobs, "media", now=clock.now),
            SqlBlobBackend(engines[1], bot_blobs, "media", now=clock.now),
            age_row,
            clock.now,
        )
        for engine in engines:
            await engine.dispose()
        return
    async with fresh_schema() as schema:
        engines = [schema_engine(schema) for _ in range(2)]
        yield Workers(
            SqlBlobBackend(engines[0], bot_blobs, "media", now=clock.now),
            SqlBlobBackend(engines[1], bot_blobs, "media", now=clock.now),
            age_row,
            clock.now,
        )
        for engine in engines:
            await engine.dispose()


def scan(n: int = 0) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([n]) * 2048 + os.urandom(16)


async def test_a_file_stored_by_one_worker_is_read_by_another_sealed_and_stored_once(
    workers: Workers,
) -> None:
    one, two = SealedBlobs(workers.one, OLD), SealedBlobs(workers.two, OLD)
    data = scan()
    digest = await one.put_content(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert await two.put_content(data) == digest  # the same upload again: one stored value
    assert await workers.two.keys() == [f"{digest[:2]}/{digest}"]
    assert await two.get_content(digest) == data
    stored = await workers.one.read(f"{digest[:2]}/{digest}")
    assert key_id_of(stored) == OLD.current_id
    assert data[8:40] not in stored


async def test_a_missing_value_is_not_found(workers: Workers) -> None:
    blobs = SealedBlobs(workers.one, OLD)
    with pytest.raises(BlobNotFound):
        await blobs.get_content("0" * 64)
    with pytest.raises(BlobNotFound):
        await blobs.get_named("ca/root-ca.pem")
    assert await blobs.get_named_or_none("ca/root-ca.pem") is None
    assert not await workers.one.exists("ab/" + "ab" * 32)


async def test_a_tampered_or_swapped_value_is_refused(workers: Workers) -> None:
    blobs = SealedBlobs(workers.one, OLD)
    first, second = await blobs.put_content(scan(1)), await blobs.put_content(scan(2))
    key_first, key_second = f"{first[:2]}/{first}", f"{second[:2]}/{second}"
    # the sealed value of the second file put in the first one's place: its AAD does not match
    await workers.one.write(key_first, await workers.one.read(key_second))
    with pytest.raises(BlobCorrupt):
        await blobs.get_content(first)
    # a plain value whose bytes are not the ones its name promises
    await workers.two.write(key_second, b"not the scan")
    with pytest.raises(BlobCorrupt):
        await SealedBlobs(workers.two, OLD).get_content(second)


async def test_a_named_value_is_replaced_and_read_by_the_other_worker(workers: Workers) -> None:
    await SealedBlobs(workers.one, OLD).put_named("root-ca.pem", b"first")
    await SealedBlobs(workers.two, OLD).put_named("root-ca.pem", b"second")
    assert await SealedBlobs(workers.one, OLD).get_named("root-ca.pem") == b"second"
    with pytest.raises(BlobCorrupt):
        await SealedBlobs(workers.one, Keyring.from_secrets("someone else's")).get_named("root-ca.pem")


async def test_rotation_re_encrypts_every_value_once_and_old_keys_can_go(workers: Workers) -> None:
    old = SealedBlobs(workers.one, OLD)
    files = [scan(n) for n in range(3)]
    digests = [await old.put_content(data) for data in files]
    await old.put_named("revoked.json", b"{}")
    rotating = SealedBlobs(workers.two, NEW)
    assert await rotating.rotate() == 4
    assert await rotating.rotate() == 0
    only_new = SealedBlobs(
        workers.one, Keyring.from_secrets("the-new-secret-0123456789", purpose=b"contract")
    )
    for digest, data in zip(digests, files, strict=True):
        assert await only_new.get_content(digest) == data
    assert await only_new.get_named("revoked.json") == b"{}"


async def test_keys_under_a_prefix_are_listed_alone(workers: Workers) -> None:
    for key in ("expiry/" + "ab" * 32, "expiry/" + "cd" * 32, "ab/" + "ab" * 32, "expiryx", "exp_ry/x"):
        await workers.one.write(key, b"v")
    assert await workers.two.keys(prefix="expiry/") == ["expiry/" + "ab" * 32, "expiry/" + "cd" * 32]
    assert await workers.two.keys(prefix="expiry") == [
        "expiry/" + "ab" * 32,
        "expiry/" + "cd" * 32,
        "expiryx",
    ]
    assert await workers.two.keys(prefix="exp_ry/") == ["exp_ry/x"]  # "_" is no wildcard
    assert await workers.two.keys(prefix="none/") == []
    assert len(await workers.two.keys()) == 5


async def test_retention_deletes_content_written_before_the_cutoff_and_nothing_named(
    workers: Workers,
) -> None:
    blobs = SealedBlobs(workers.one, OLD)
    old_scan, new_scan = scan(1), scan(2)
    old, new = await blobs.put_content(old_scan), await blobs.put_content(new_scan)
    await blobs.put_named("root-ca.pem", b"kept")
    for key in (f"{old[:2]}/{old}", "root-ca.pem"):
        await workers.age(key, timedelta(days=31))
    cutoff = workers.now() - timedelta(days=30)
    assert await SealedBlobs(workers.two, OLD).purge_content_written_before(cutoff) == 1
    with pytest.raises(BlobNotFound):
        await blobs.get_content(old)
    assert await blobs.get_content(new) == new_scan
    assert await blobs.get_named("root-ca.pem") == b"kept"


async def test_a_file_with_its_own_expiry_is_refused_by_every_worker_after_it_and_purged(
    workers: Workers,
) -> None:
    """A data export: stored by one worker for 24 hours, refused by the other after them."""
    clock = ManualClock()
    one = SharedMediaStore(workers.one, OLD, now=clock.now)
    two = SharedMediaStore(workers.two, OLD, now=clock.now)
    export, kept = scan(3), scan(4)
    file = await one.put(
        export,
        filename="my-data.zip",
        content_type="application/zip",
        expires_at=clock.now() + timedelta(hours=24),
    )
    other = await one.put(kept, filename="scan.png", content_type="image/png")
    clock.advance(timedelta(hours=23))
    assert await two.get(file.media_id) == export
    clock.advance(timedelta(hours=1))
    with pytest.raises(MediaExpired):
        await two.get(file.media_id)
    with pytest.raises(StorageError):
        await one.get(file.media_id)  # deleted by the refusal, for every worker

    again = await one.put(
        export,
        filename="my-data.zip",
        content_type="application/zip",
        expires_at=clock.now() + timedelta(hours=1),
    )
    clock.advance(timedelta(hours=2))
    assert await two.purge_older_than(clock.now() - timedelta(days=30)) == 1  # nobody asked for it
    assert not await workers.one.exists(one.blobs.content_key(again.media_id))
    assert not any(key.startswith("expiry/") for key in await workers.one.keys())
    assert await one.get(other.media_id) == kept


class CountingReads:
    """A backend that counts its reads (``read`` and ``exists``)."""

    def __init__(self, backend: BlobBackend) -> None:
        self.backend = backend
        self.reads = 0

    async def write(self, key: str, data: bytes) -> None:
        await self.backend.write(key, data)

    async def read(self, key: str) -> bytes:
        self.reads += 1
        return await self.backend.read(key)

    async def exists(self, key: str) -> bool:
        self.reads += 1
        return await self.backend.exists(key)

    async def delete(self, key: str) -> None:
        await self.backend.delete(key)

    async def keys(self, *, written_before: datetime | None = None, prefix: str = "") -> list[str]:
        return await self.backend.keys(written_before=written_before, prefix=prefix)


async def test_a_file_read_is_one_read_and_its_expiry_travels_inside_it(workers: Workers) -> None:
    """The expiry is sealed into the file: a read checks it without a second read, and a file
    whose purge index is gone is still refused after it."""
    clock = ManualClock()
    counting = CountingReads(workers.two)
    one = SharedMediaStore(workers.one, OLD, now=clock.now)
    two = SharedMediaStore(counting, OLD, now=clock.now)
    export, kept = scan(5), scan(6)
    file = await one.put(
        export,
        filename="my-data.zip",
        content_type="application/zip",
        expires_at=clock.now() + timedelta(hours=1),
    )
    other = await one.put(kept, filename="scan.png", content_type="image/png")
    assert await two.get(file.media_id) == export
    assert await two.get(other.media_id) == kept
    assert counting.reads == 2
    await workers.one.delete("expiry/" + file.media_id)
    # the same bytes stored again without an expiry do not lift the one already stored
    await one.put(export, filename="again.zip", content_type="application/zip")
    clock.advance(timedelta(hours=1))
    with pytest.raises(MediaExpired):
        await two.get(file.media_id)
    assert await two.get(other.media_id) == kept


async def test_a_backend_closed_at_shutdown_leaves_what_it_stored_and_closes_once(workers: Workers) -> None:
    blobs = SealedBlobs(workers.one, NEW)
    digest = await blobs.put_content(b"scan of a licence")
    await blobs.aclose()
    await blobs.aclose()  # a second shutdown path (a closer run twice) is harmless
    assert await SealedBlobs(workers.two, NEW).get_content(digest) == b"scan of a licence"


async def test_closing_an_s3_backend_releases_its_connections() -> None:
    clock = Clock()
    transport = RecordingTransport(FakeS3(clock.now, access_key="AK"))
    backend = s3_backend(clock, transport)
    await backend.write("a/b", b"sealed")
    media = SharedMediaStore(backend, NEW, now=clock.now)
    await media.aclose()
    assert transport.closed == 1
