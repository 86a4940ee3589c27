"""The conversation store for SQLite, built for the embedded default's throughput.

Every operation is a small function of a ``sqlite3`` connection. The operations one event loop
iteration queues run together when the next begins, on the loop's own thread (``_OnLoop``):
the reads first, outside any write transaction; the writes in ONE transaction (group commit),
their results handed back only after it has committed. Should one operation be refused
part-way (a version conflict), the transaction is rolled back and the batch runs again with
each operation in a savepoint of its own, so a refusal never undoes its neighbours. So the
promise is the same as ``SqlConversationStore``'s (a reply exists only once the state that
produced it is committed) at a fraction of the cost: one commit per batch instead of several
per message. The tests/contract suite runs against both.

What may wait runs in the writer thread instead, on a connection of its own that waits for
locks: a batch that met another connection's lock (the loop's connection never waits), the
checkpoints (the only fsyncs in WAL mode with ``synchronous=NORMAL``), and every operation of
an event loop other than the store's. The batches ran in that thread once; it gave up the GIL
inside every SQLite call and waited a switch interval (5 ms) to get it back while the loop ran
Python, so SQLite work hardly overlapped the engine's and the hand-over cost both sides
(``bench/README.md``). Statements that return one row however much they find
(``json_group_array``), updates of many rows in one statement (``json_each``), replies this
process committed taken from memory when claimed (``_fresh``) and JSON through orjson
(``json_text``) keep a batch's calls into SQLite few.

The schema is the one the migrations create; other modules keep using SQLAlchemy on the same
file (``.engine``) for their own tables. Timestamps are written in SQLAlchemy's SQLite format
(UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``), JSON as text, so both readers agree.
"""

# Over 600 lines: every role of the conversation store (conversations, outbox, transcripts,
# cursors, table writes) implemented for group-commit batches; each role's SQL must run inside
# the same batch transaction, so they share the batch runner and its savepoint helper.

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

from bot.engine import json_text
from bot.engine.messages import ConversationKey, Origin, OutboundMessage, Reply
from bot.engine.ports import Clock, SystemClock
from bot.engine.store import UNDELIVERED, Commit, ConversationRow, OutboxStatus, Snapshot, WriterUsage
from bot.engine.tables import UNDELIVERED_SQL
from bot.errors import StorageError, VersionConflict

log = logging.getLogger("sealbot.store")

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]
# How an operation runs: READ outside the write transaction, SINGLE (one statement, atomic by
# itself) or ATOMIC (several statements, inside a savepoint of its own) inside it.
READ, SINGLE, ATOMIC = 0, 1, 2
# an operation, its mode, and where its outcome goes: the caller's event loop and future
Job = tuple[Operation, int, asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
Outcome = tuple["asyncio.Future[Any]", Any, Exception | None]

MAX_BATCH = 256
# While the event loop's connection writes, the writer thread checkpoints at most this often
# (seconds), which bounds the WAL to what is written in that time.
CHECKPOINT_EVERY = 0.5
MAX_PREPARED = 256
# Replies committed by this process and not yet claimed, still decoded (see ``_claimed``).
MAX_FRESH = 4096
# An outbox row as ``json_object`` arguments: what ``_message`` reads.
_OUTBOX_FIELDS = ", ".join(
    f"'{name}', {name}"
    for name in ("id", "conversation_id", "attempts", "origin", "payload", "created_at", "in_reply_to")
)


@overload
def ts(value: datetime) -> str: ...


@overload
def ts(value: datetime | None) -> str | None: ...


def ts(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite form of a timestamp: UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    # One or two per message: ``replace(tzinfo=None)`` costs more than the formatting (keyword
    # arguments), so the UTC form is formatted with its offset and the offset cut off.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]


def from_ts(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sql_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, dict | list):
        return json_text.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def encoded_commit(key: ConversationKey, change: Commit) -> tuple[str, list[str], str]:
    """What a commit stores as JSON text: the state, each reply's outbox payload, the inbound
    body. (``bench.store_cost``'s instruments encode with this too, to cost what this store
    costs the event loop.)"""
    payloads = [
        json_text.dumps({"key": str(key), "reply": queued.reply.to_dict()}) for queued in change.replies
    ]
    return json_text.dumps(change.state), payloads, json_text.dumps(change.inbound_body)


class _Control(Enum):
    """What the writer thread's queue carries besides jobs."""

    STOP = "stop"
    CHECKPOINT = "checkpoint"


def _is_busy(exc: sqlite3.Error) -> bool:
    """SQLite could not take a lock another connection holds (``SQLITE_BUSY``, ``_LOCKED``
    and their extended codes, whose low byte is the primary code)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Busy(Exception):
    """Another connection holds a lock these jobs need; none of them was done."""

    def __init__(self, jobs: list[Job] | None = None) -> None:
        super().__init__()
        self.jobs = jobs or []


@dataclass
class _Work:
    """What batches did on one side (the event loop's connections, or the writer thread's):
    batches that wrote, and seconds spent running batches. Written by the side that runs them,
    read from any thread (each field is replaced whole)."""

    committed: int = 0
    busy_seconds: float = 0.0


class _Batches:
    """Runs batches of jobs on one connection: reads first, outside any write transaction,
    then every write in ONE transaction (group commit); callers learn their outcomes only
    after it committed, through ``hand_back``.

    With ``wait_for_locks`` false (the event loop's connection, which must never wait), a lock
    held by another connection raises ``_Busy`` before anything was done, and the caller hands
    the batch to the writer thread, whose connection waits."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        hand_back: Callable[[dict[asyncio.AbstractEventLoop, list[Outcome]]], None],
        *,
        wait_for_locks: bool,
        work: _Work,
    ) -> None:
        self.conn = conn
        self.hand_back = hand_back
        self.wait_for_locks = wait_for_locks
        self.work = work

    def run(self, batch: list[Job]) -> None:
        started = time.perf_counter()
        try:
            self._run(batch)
        finally:
            self.work.busy_seconds += time.perf_counter() - started

    def _run(self, batch: list[Job]) -> None:
        # Reads go first, outside the write transaction, and their callers hear back at once
        # rather than after the batch's COMMIT: a read never waits for another conversation's
        # writes. Answering them first changes nothing any caller can see: every caller awaits
        # its own writes before it reads again, and one conversation's messages are handled
        # one at a time, so no read in a batch can be meant to see a write in the same batch.
        reads = [job for job in batch if job[1] == READ]
        if reads:
            try:
                self._run_reads(reads)
            except _Busy:
                raise _Busy(batch) from None
            if len(reads) == len(batch):
                return
            batch = [job for job in batch if job[1] != READ]
        try:
            try:
                outcomes = self._write(batch, isolated=False)
            except _Refused:
                # An operation was refused (a version conflict) after it may have written part
                # of its statements: everything is undone and the batch runs again with each
                # operation in a savepoint of its own. Operations are plain functions of the
                # connection and nobody has seen a result yet, so running them again is safe;
                # the savepoints cost a statement each, and refusals are rare.
                outcomes = self._write(batch, isolated=True)
        except _Busy:
            raise _Busy(batch) from None  # the reads before were answered
        # Only now, after COMMIT, do callers learn their results: one wake-up per event loop.
        self.hand_back(outcomes)

    def _write(self, batch: list[Job], *, isolated: bool) -> dict[asyncio.AbstractEventLoop, list[Outcome]]:
        """One write transaction for ``batch``. Unless ``isolated``, the first refusal of an
        operation of several statements rolls it all back and raises ``_Refused``."""
        conn = self.conn
        outcomes: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        changes_before = conn.total_changes
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not self.wait_for_locks and _is_busy(exc):
                    raise _Busy from exc
                raise
            for operation, mode, loop, future in batch:
                # A savepoint isolates an operation of several statements, so that its refusal
                # undoes it alone; one statement is atomic by itself.
                savepoint = isolated and mode == ATOMIC
                if savepoint:
                    conn.execute("SAVEPOINT op")
                error: Exception | None = None
                try:
                    result = operation(conn)
                except Exception as exc:  # handed to the awaiting caller, translated
                    if mode == ATOMIC and not isolated:
                        conn.execute("ROLLBACK")
                        raise _Refused from exc
                    if savepoint:
                        conn.execute("ROLLBACK TO op")
                    result, error = None, _translated(exc)
                if savepoint:
                    conn.execute("RELEASE op")
                outcomes.setdefault(loop, []).append((future, result, error))
            wrote = conn.total_changes != changes_before
            conn.execute("COMMIT")
            if wrote:  # a batch of reads only is no write transaction
                self.work.committed += 1
        except sqlite3.Error as exc:
            outcomes = _all_failed(conn, batch, StorageError(f"sqlite batch failed: {exc}"))
        return outcomes

    def _run_reads(self, reads: list[Job]) -> None:
        conn = self.conn
        outcomes: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        try:
            if len(reads) > 1:
                conn.execute("BEGIN")  # one read transaction (one snapshot) for the lot
            for operation, _, loop, future in reads:
                try:
                    outcome: Outcome = (future, operation(conn), None)
                except Exception as exc:
                    if not self.wait_for_locks and isinstance(exc, sqlite3.Error) and _is_busy(exc):
                        raise _Busy from exc  # rare in WAL mode (a recovery, a WAL reset)
                    outcome = (future, None, _translated(exc))
                outcomes.setdefault(loop, []).append(outcome)
            if conn.in_transaction:
                conn.execute("COMMIT")
        except _Busy:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        except sqlite3.Error as exc:
            outcomes = _all_failed(conn, reads, StorageError(f"sqlite read failed: {exc}"))
        self.hand_back(outcomes)


def _connect(path: str, *, timeout: float, set_wal: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    if set_wal:  # kept in the file: the writer thread's connection sets it for every other one
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


class _Writer(threading.Thread):
    """Runs queued batches on a connection of its own, which waits for locks: the batches the
    event loop's connection could not run, and the checkpoints."""

    def __init__(self, path: str) -> None:
        super().__init__(name="sqlite-store", daemon=True)
        self.path = path
        self.jobs: queue.SimpleQueue[Job | _Control] = queue.SimpleQueue()
        self.ready: Future[None] = Future()
        self.work = _Work()
        self.cpu_seconds_at_exit: float | None = None

    def run(self) -> None:
        try:
            conn = _connect(self.path, timeout=30, set_wal=True)
        except sqlite3.Error as exc:
            self.ready.set_exception(StorageError(f"cannot open {self.path}: {exc}"))
            return
        batches = _Batches(conn, _hand_back, wait_for_locks=True, work=self.work)
        self.ready.set_result(None)
        try:
            while True:
                first = self.jobs.get()
                if first is _Control.STOP:
                    return
                batch: list[Job] = []
                checkpoint = False
                item: Job | _Control = first
                while True:
                    if item is _Control.STOP:
                        self.jobs.put(item)  # finish this batch, then stop
                        break
                    if item is _Control.CHECKPOINT:
                        checkpoint = True
                    else:
                        batch.append(item)
                    if len(batch) >= MAX_BATCH:
                        break
                    try:
                        item = self.jobs.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    batches.run(batch)
                if checkpoint:
                    _checkpoint(conn)
        finally:
            conn.close()
            self.cpu_seconds_at_exit = time.thread_time()

    def cpu_seconds(self) -> float:
        """This thread's CPU time, read from another thread."""
        if self.cpu_seconds_at_exit is not None:
            return self.cpu_seconds_at_exit
        ident = self.ident
        if ident is None:  # not started
            return 0.0
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(ident))
        except OSError:  # it ended between the two reads above
            return self.cpu_seconds_at_exit or 0.0


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL's committed pages into the database file (the fsyncs happen here), without
    waiting for anyone: a page a reader still needs is copied by the next checkpoint."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:
        log.warning("WAL checkpoint failed: %s", exc)


class _OnLoop:
    """Runs the store's batches on the event loop's own thread.

    The jobs one event loop iteration queues run together when the next begins (one
    ``call_soon``), synchronously, on a connection that never waits for a lock. On the
    embedded default this is the fast path: a thread beside the loop gave up the GIL inside
    every SQLite call and waited for the loop to give it back, so SQLite work hardly overlapped
    the engine's Python and the hand-over cost both sides (``bench/README.md``). What could
    block the loop is kept off it: a lock held by another connection (another module's
    SQLAlchemy session, a CLI command) sends the batch to the writer thread instead of waiting
    (``timeout=0``); the fsyncs are the checkpoint's, so this connection never checkpoints by
    itself and asks the writer thread to, at most every ``CHECKPOINT_EVERY`` seconds while it
    writes. Commits in WAL mode with ``synchronous=NORMAL`` write to the OS's cache and do not
    wait for the disk."""

    def __init__(self, writer: _Writer, loop: asyncio.AbstractEventLoop, work: _Work) -> None:
        self.writer = writer
        self.loop = loop
        conn = _connect(writer.path, timeout=0, set_wal=False)
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self.batches = _Batches(conn, _deliver_each, wait_for_locks=False, work=work)
        self.pending: list[Job] = []
        self.last_checkpoint = time.monotonic()

    def submit(self, job: Job) -> None:
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append(job)

    def flush(self) -> None:
        # At most MAX_BATCH operations at a time, the rest in the next iteration, so that one
        # burst holds the loop for one batch's time (a few ms), not for all of it.
        batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
        if self.pending:
            self.loop.call_soon(self.flush)
        if not batch:
            return
        committed = self.batches.work.committed
        try:
            self.batches.run(batch)
        except _Busy as busy:
            for job in busy.jobs:
                self.writer.jobs.put(job)
            return
        if (
            self.batches.work.committed != committed
            and time.monotonic() - self.last_checkpoint >= CHECKPOINT_EVERY
        ):
            self.last_checkpoint = time.monotonic()
            self.writer.jobs.put(_Control.CHECKPOINT)

    def close(self) -> None:
        """Run what is queued and close the connection: here when called on this loop, else
        in the writer thread (which hands each outcome back to its caller's loop), so that a
        caller waiting for a queued operation is never left waiting on a closed connection."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            while self.pending:
                self.flush()
        else:
            queued, self.pending = self.pending, []
            for job in queued:
                self.writer.jobs.put(job)
        self.batches.conn.close()


def _all_failed(
    conn: sqlite3.Connection, jobs: list[Job], failure: StorageError
) -> dict[asyncio.AbstractEventLoop, list[Outcome]]:
    """The transaction failed as a whole: rolled back, and every job of it gets ``failure``."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    outcomes: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for _, _, loop, future in jobs:
        outcomes.setdefault(loop, []).append((future, None, failure))
    return outcomes


def _at_attempt(message: OutboundMessage, attempt: int) -> OutboundMessage:
    """A remembered message as sent on its ``attempt``."""
    return message if message.attempt == attempt else replace(message, attempt=attempt)


def _hand_back(outcomes: dict[asyncio.AbstractEventLoop, list[Outcome]]) -> None:
    for loop, results in outcomes.items():
        try:
            loop.call_soon_threadsafe(_deliver, results)
        except RuntimeError:
            log.warning("event loop closed before a store result was delivered")


def _deliver_each(outcomes: dict[asyncio.AbstractEventLoop, list[Outcome]]) -> None:
    """Outcomes of a batch run on the event loop's thread: that loop's own futures."""
    for results in outcomes.values():
        _deliver(results)


def _earlier_in_flight(conn: sqlite3.Connection, conversation_id: int, before: int | None = None) -> bool:
    """Whether an answer of the conversation (older than outbox id ``before``, if given) is
    still on its way: a passive reply must not overtake it."""
    earlier = conn.execute(
        "SELECT 1 FROM outbox WHERE conversation_id=? AND (? IS NULL OR id<?) AND (status=?"
        " OR (status=? AND in_reply_to IS NOT NULL)) LIMIT 1",
        (conversation_id, before, before, OutboxStatus.SENDING, OutboxStatus.PENDING),
    ).fetchone()
    return earlier is not None


class _Refused(Exception):
    """An operation of several statements failed inside an optimistic batch (no savepoints)."""


def _translated(exc: Exception) -> Exception:
    """The one place where this store's driver errors become the engine's."""
    if isinstance(exc, sqlite3.IntegrityError):
        conflict = VersionConflict(str(exc))
        conflict.__cause__ = exc
        return conflict
    if isinstance(exc, sqlite3.Error):
        failure = StorageError(f"sqlite operation failed: {exc}")
        failure.__cause__ = exc
        return failure
    return exc


def _deliver(results: list[Outcome]) -> None:
    for future, result, error in results:
        if future.done():  # the caller was cancelled meanwhile
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class SqliteConversationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        if engine.dialect.name != "sqlite":
            raise StorageError("SqliteConversationStore needs a SQLite database")
        self.engine = engine
        path = engine.url.database
        if not path or path == ":memory:":
            raise StorageError("SqliteConversationStore needs a database file")
        self._writer = _Writer(path)
        # prepared statements of ``write``: id -> (the statement, kept alive; its compiled form)
        self._compiled: dict[int, tuple[sa.Insert | sa.Update | sa.Delete | sa.Select[Any], SQLCompiler]] = {}
        # outbox id -> the message as ``commit`` built it. A row's payload never changes after
        # it is written (``rotate-keys`` reseals it under a key this process also holds), so
        # the claim that sends it can take this instead of decoding the row again: on the
        # embedded default that decoding was half of the dispatcher's time on the event loop.
        self._fresh: OrderedDict[int, OutboundMessage] = OrderedDict()
        # key -> conversation row id, of the batch ``claim_due`` claimed last (``owners_of``)
        self._claimed_conversations: dict[ConversationKey, int] = {}
        self._writer.start()
        self._writer.ready.result(timeout=30)
        # The event loop this store runs its batches on (the first to use it; see ``_OnLoop``),
        # and what the batches on event loops did, this one's and earlier ones' (closed since).
        self._on_loop: _OnLoop | None = None
        self._loop_refused = False  # the loop's connection could not be opened
        self._loop_work = _Work()

    def _run(self, operation: Callable[[sqlite3.Connection], T], *, mode: int = ATOMIC) -> asyncio.Future[T]:
        """Run ``operation`` (``READ``, ``SINGLE`` or ``ATOMIC``) in this event loop's next
        batch; calls from another loop than the store's go to the writer thread. Awaited by
        the caller: the future itself rather than a coroutine around it, which every wake-up
        would pass through (two per message)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job: Job = (operation, mode, loop, future)
        on_loop = self._on_loop
        if on_loop is None or on_loop.loop is not loop:
            on_loop = self._bind(loop)
        if on_loop is None:
            self._writer.jobs.put(job)
        else:
            on_loop.submit(job)
        return future

    def _bind(self, loop: asyncio.AbstractEventLoop) -> _OnLoop | None:
        """The batches of ``loop`` run on its thread if no other open loop has the store."""
        current = self._on_loop
        if current is not None:
            if not current.loop.is_closed():
                return None
            self._retire(current)
        if self._loop_refused:
            return None
        try:
            self._on_loop = _OnLoop(self._writer, loop, self._loop_work)
        except sqlite3.Error as exc:
            # the writer thread serves every loop then: slower, never wrong
            log.warning("the store's batches stay in its writer thread: %s", exc)
            self._loop_refused = True
            return None
        return self._on_loop

    def _retire(self, on_loop: _OnLoop) -> None:
        on_loop.close()
        self._on_loop = None

    @property
    def write_transactions(self) -> int:
        return self._loop_work.committed + self._writer.work.committed

    def writer_usage(self) -> WriterUsage:
        """Where the store's SQLite work ran so far: the writer thread's busy and CPU time,
        and the time it took on the event loop (``/metrics``; ``bench.forms`` prints them)."""
        return WriterUsage(
            self._writer.work.busy_seconds, self._writer.cpu_seconds(), self._loop_work.busy_seconds
        )

    async def close(self) -> None:
        if self._on_loop is not None:
            self._retire(self._on_loop)
        self._writer.jobs.put(_Control.STOP)
        await asyncio.to_thread(self._writer.join, 30)

    # ---- the handling transaction -------------------------------------------------------------

    async def load(self, key: ConversationKey, message_id: str | None) -> Snapshot:
        def load(conn: sqlite3.Connection) -> tuple[int, int, str, tuple[int, ...] | None] | None:
            # One statement: the state, and the receipt of this delivery if it came before.
            row = conn.execute(
                "SELECT c.id, c.version, c.state, r.reply_ids FROM conversations c"
                " LEFT JOIN inbound_receipts r ON r.conversation_id = c.id AND r.message_id = ?"
                " WHERE c.channel=? AND c.account=? AND c.user_id=?",
                (message_id, key.channel, key.account, key.user_id),
            ).fetchone()
            if row is None:
                return None
            duplicate = None if row[3] is None else tuple(json_text.loads(row[3]))
            return row[0], row[1], row[2], duplicate

        found = await self._run(load, mode=READ)
        if found is None:
            return Snapshot(None, 0, None)
        # The state's JSON is decoded outside the operation, and only if it is read.
        return Snapshot.from_text(*found)

    async def commit(
        self, key: ConversationKey, snapshot: Snapshot, change: Commit, now: datetime
    ) -> list[OutboundMessage]:
        # Encoded on the caller's thread (see ``load``).
        state_json, payloads, body_json = encoded_commit(key, change)
        now_s = ts(now)
        side_writes = [self._bound(side.statement, side.params) for side in change.side_writes]
        in_band = change.in_band
        record = (
            None
            if in_band is None or in_band.plan.record is None
            else self._bound(in_band.plan.record.statement, in_band.plan.record.params)
        )

        def commit(conn: sqlite3.Connection) -> list[OutboundMessage]:
            try:
                conv_id = self._write_state(conn, key, snapshot, change, now_s, state_json)
                for sql, values in side_writes:
                    conn.execute(sql, values)
                carry = self._carried_count(conn, conv_id, snapshot, change)
                messages = []
                for index, (queued, payload) in enumerate(zip(change.replies, payloads, strict=True)):
                    cursor = conn.execute(
                        "INSERT INTO outbox (conversation_id, channel, origin, payload, status, attempts,"
                        " next_attempt_at, in_reply_to, created_at) VALUES (?,?,?,?,?,0,?,?,?)",
                        (
                            conv_id,
                            key.channel,
                            queued.origin.value,
                            payload,
                            OutboxStatus.PASSIVE if index < carry else OutboxStatus.PENDING,
                            ts(queued.not_before) if queued.not_before else now_s,
                            change.in_reply_to,
                            now_s,
                        ),
                    )
                    assert cursor.lastrowid is not None
                    messages.append(
                        OutboundMessage(
                            cursor.lastrowid, key, queued.reply, queued.origin, now, change.in_reply_to
                        )
                    )
                if change.message_id is not None:
                    conn.execute(
                        "INSERT INTO inbound_receipts (conversation_id, message_id, kind, body, reply_ids,"
                        " received_at) VALUES (?,?,?,?,?,?)",
                        (
                            conv_id,
                            change.message_id,
                            change.inbound_kind,
                            body_json,
                            json_text.dumps([m.outbox_id for m in messages]),
                            now_s,
                        ),
                    )
                if in_band is not None:
                    if carry and record is not None:
                        conn.execute(*record)
                    in_band.window.decide([m.outbox_id for m in messages[:carry]])
                return messages
            except sqlite3.IntegrityError as exc:
                raise VersionConflict(str(key)) from exc

        messages = await self._run(commit)
        fresh = self._fresh
        carried = set(in_band.window.carried) if in_band is not None else ()
        for message in messages:
            if message.outbox_id not in carried:  # carried ones are never claimed for sending
                fresh[message.outbox_id] = message
        while len(fresh) > MAX_FRESH:
            fresh.popitem(last=False)
        return messages

    @staticmethod
    def _carried_count(conn: sqlite3.Connection, conv_id: int, snapshot: Snapshot, change: Commit) -> int:
        """As ``SqlConversationStore._carried_count``."""
        carry = change.in_band.claimable(len(change.replies)) if change.in_band is not None else 0
        if carry and snapshot.conversation_id is not None and _earlier_in_flight(conn, conv_id):
            return 0
        return carry

    @staticmethod
    def _write_state(
        conn: sqlite3.Connection,
        key: ConversationKey,
        snapshot: Snapshot,
        change: Commit,
        now_s: str,
        state: str,
    ) -> int:
        touched = now_s if change.touched_by_user else None
        if snapshot.conversation_id is None:
            cursor = conn.execute(
                "INSERT INTO conversations (channel, account, user_id, version, state, owner,"
                " platform_account_id, flow, wait_deadline, created_at, updated_at, last_inbound_at)"
                " VALUES (?,?,?,1,?,?,?,?,?,?,?,?)",
                (
                    key.channel,
                    key.account,
                    key.user_id,
                    state,
                    change.owner,
                    change.platform_account_id,
                    change.flow,
                    ts(change.wait_deadline),
                    now_s,
                    now_s,
                    touched,
                ),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid
        cursor = conn.execute(
            "UPDATE conversations SET version=version+1, state=?, owner=?, platform_account_id=?, flow=?,"
            " wait_deadline=?, updated_at=?, last_inbound_at=coalesce(?, last_inbound_at)"
            " WHERE id=? AND version=?",
            (
                state,
                change.owner,
                change.platform_account_id,
                change.flow,
                ts(change.wait_deadline),
                now_s,
                touched,
                snapshot.conversation_id,
                snapshot.version,
            ),
        )
        if cursor.rowcount != 1:
            raise VersionConflict(str(key))
        return snapshot.conversation_id

    # ---- the outbox -------------------------------------------------------------------------

    @staticmethod
    def _message(row: sqlite3.Row | Mapping[str, Any], attempt: int | None = None) -> OutboundMessage:
        payload = json_text.loads(row["payload"])
        return OutboundMessage(
            outbox_id=row["id"],
            key=ConversationKey.parse(payload["key"]),
            reply=Reply.from_dict(payload["reply"]),
            origin=Origin(row["origin"]),
            created_at=from_ts(row["created_at"]) or datetime.now(UTC),
            in_reply_to=row["in_reply_to"],
            attempt=attempt if attempt is not None else max(1, row["attempts"]),
        )

    def _claimed(self, row: sqlite3.Row | Mapping[str, Any], attempt: int | None = None) -> OutboundMessage:
        """The message of a row just claimed for sending: the one this process committed, if
        it is still remembered, else decoded from the row."""
        fresh = self._fresh.pop(row["id"], None)
        if fresh is None:
            return self._message(row, attempt)
        return _at_attempt(fresh, attempt if attempt is not None else max(1, row["attempts"]))

    async def outbound(self, ids: Sequence[int]) -> list[OutboundMessage]:
        if not ids:
            return []
        wanted = list(ids)

        def outbound(conn: sqlite3.Connection) -> list[OutboundMessage]:
            marks = ",".join("?" * len(wanted))
            rows = conn.execute(f"SELECT * FROM outbox WHERE id IN ({marks}) ORDER BY id", wanted).fetchall()  # noqa: S608 - placeholders only
            return [self._message(r) for r in rows]

        return await self._run(outbound, mode=READ)

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[OutboundMessage]:
        """As ``SqlConversationStore.claim_due``: oldest first, one at a time per conversation.

        Each statement returns one row (the rows it finds as one JSON array) and the claimed
        rows are updated by one statement: a claim of a hundred rows fetched and updated one by
        one was a hundred calls into SQLite (each, in the writer thread, a wait for the GIL)."""

        fresh = self._fresh

        def claim(conn: sqlite3.Connection) -> list[tuple[OutboundMessage | dict[str, Any], int, int]]:
            now_s, until = ts(now), ts(now + lease)
            busy = set(
                json_text.loads(
                    conn.execute(
                        "SELECT json_group_array(conversation_id) FROM outbox WHERE status=? AND lease_until > ?",
                        (OutboxStatus.SENDING, now_s),
                    ).fetchone()[0]
                )
            )
            # Only rows that are due AND the oldest undelivered of their conversation: a
            # window over all pending rows would fill up with replies held for a passive answer
            # (or pushes scheduled for later) and starve the due ones behind it. A candidate is
            # [id, conversation, attempts]: the payload is read below only for the claimed rows
            # this process does not remember (copying every candidate's payload into JSON and
            # out again was most of the claim's time).
            candidates: list[list[int]] = json_text.loads(
                conn.execute(
                    "SELECT json_group_array(json_array(id, conversation_id, attempts)) FROM"  # noqa: S608 - constant text
                    " (SELECT o.id, o.conversation_id, o.attempts FROM outbox o"
                    " WHERE ((o.status=? AND o.next_attempt_at <= ?) OR (o.status=? AND o.lease_until <= ?))"
                    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.conversation_id = o.conversation_id"
                    f" AND p.id < o.id AND p.{UNDELIVERED_SQL})"
                    " ORDER BY o.id LIMIT ?)",
                    (OutboxStatus.PENDING, now_s, OutboxStatus.SENDING, now_s, limit * 4),
                ).fetchone()[0]
            )
            candidates.sort()  # by id: an aggregate's order is not promised
            chosen: list[list[int]] = []
            seen: set[int] = busy
            for candidate in candidates:
                if candidate[1] in seen:
                    continue
                seen.add(candidate[1])
                chosen.append(candidate)
                if len(chosen) >= limit:
                    break
            if not chosen:
                return []
            ids = [outbox_id for outbox_id, _, _ in chosen]
            conn.execute(
                "UPDATE outbox SET status=?, lease_until=?, attempts=attempts+1"
                " WHERE id IN (SELECT value FROM json_each(?))",
                (OutboxStatus.SENDING, until, json_text.dumps(ids)),
            )
            # What this process committed is taken as it is (the reference, here: the claim may
            # run in the writer thread while the loop's commits evict old entries).
            remembered = {outbox_id: fresh.get(outbox_id) for outbox_id in ids}
            unknown = [outbox_id for outbox_id, message in remembered.items() if message is None]
            rows: dict[int, dict[str, Any]] = {}
            if unknown:
                found: list[dict[str, Any]] = json_text.loads(
                    conn.execute(
                        f"SELECT json_group_array(json_object({_OUTBOX_FIELDS})) FROM outbox"  # noqa: S608 - constant text
                        " WHERE id IN (SELECT value FROM json_each(?))",
                        (json_text.dumps(unknown),),
                    ).fetchone()[0]
                )
                rows = {int(row["id"]): row for row in found}
            return [
                (remembered[outbox_id] or rows[outbox_id], attempts + 1, conversation_id)
                for outbox_id, conversation_id, attempts in chosen
            ]

        # Rows become messages (JSON decoding) on the caller's thread, as in ``load``.
        claimed = []
        conversation_ids: dict[ConversationKey, int] = {}
        for known, attempt, conversation_id in await self._run(claim):
            if isinstance(known, OutboundMessage):
                fresh.pop(known.outbox_id, None)
                message = _at_attempt(known, attempt)
            else:
                message = self._message(known, attempt)
            claimed.append(message)
            conversation_ids[message.key] = conversation_id
        self._claimed_conversations = conversation_ids
        return claimed

    async def mark_sent_many(self, outbox_ids: Sequence[int], now: datetime) -> None:
        params = (OutboxStatus.SENT, ts(now), json_text.dumps(list(outbox_ids)))

        def mark(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE outbox SET status=?, sent_at=?, lease_until=NULL, last_error=NULL"
                " WHERE id IN (SELECT value FROM json_each(?))",
                params,
            )

        await self._run(mark, mode=SINGLE)

    async def owners_of(self, keys: Sequence[ConversationKey]) -> dict[ConversationKey, str]:
        found = {key: "bot" for key in keys}
        if not found:
            return found
        # The dispatcher asks about the conversations of the batch it just claimed, whose row
        # ids the claim read: looked up by id, and only those some person holds come back.
        # (By key, through ``json_extract`` three times a key, it was 3 % of a message.)
        claimed = self._claimed_conversations
        ids = [claimed.get(key) for key in found]
        if None not in ids:
            by_id = dict(zip(ids, found, strict=True))
            held = json_text.dumps(ids)

            def not_bot(conn: sqlite3.Connection) -> str:
                return str(
                    conn.execute(
                        "SELECT json_group_array(json_array(id, owner)) FROM conversations"
                        " WHERE id IN (SELECT value FROM json_each(?)) AND owner != 'bot'",
                        (held,),
                    ).fetchone()[0]
                )

            for conversation_id, owner in json_text.loads(await self._run(not_bot, mode=READ)):
                found[by_id[conversation_id]] = str(owner)
            return found
        wanted = json_text.dumps([[key.channel, key.account, key.user_id] for key in found])

        def owners(conn: sqlite3.Connection) -> str:
            # One statement, one row (see ``claim_due``).
            return str(
                conn.execute(
                    "SELECT json_group_array(json_array(c.channel, c.account, c.user_id, c.owner))"
                    " FROM json_each(?) k JOIN conversations c"
                    " ON c.channel = json_extract(k.value, '$[0]') AND c.account = json_extract(k.value, '$[1]')"
                    " AND c.user_id = json_extract(k.value, '$[2]')",
                    (wanted,),
                ).fetchone()[0]
            )

        for channel, account, user_id, owner in json_text.loads(await self._run(owners, mode=READ)):
            found[ConversationKey(channel, account, user_id)] = str(owner)
        return found

    async def mark_retry(self, outbox_id: int, next_attempt_at: datetime, error: str) -> None:
        await self._execute(
            "UPDATE outbox SET status=?, next_attempt_at=?, lease_until=NULL, last_error=? WHERE id=?",
            (OutboxStatus.PENDING, ts(next_attempt_at), error, outbox_id),
        )

    async def mark_final(self, outbox_id: int, status: str, error: str | None) -> None:
        await self._execute(
            "UPDATE outbox SET status=?, lease_until=NULL, last_error=? WHERE id=?",
            (status, error, outbox_id),
        )

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        def execute(conn: sqlite3.Connection) -> None:
            conn.execute(sql, params)

        await self._run(execute, mode=SINGLE)

    async def claim_passive(
        self, ids: Sequence[int], *, now: Clock | None = None, until: datetime | None = None
    ) -> list[OutboundMessage]:
        """As ``SqlConversationStore.claim_passive``; ``now`` is read inside the
        transaction that claims, wherever its batch runs."""
        wanted = list(ids)
        if not wanted:
            return []
        clock = now or SystemClock()

        def claim(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if until is not None and clock.now() >= until:
                return []
            first = conn.execute("SELECT conversation_id FROM outbox WHERE id=?", (wanted[0],)).fetchone()
            if first is None:
                return []
            if _earlier_in_flight(conn, first[0], wanted[0]):
                return []
            taken = []
            for outbox_id in wanted:
                cursor = conn.execute(
                    "UPDATE outbox SET status=? WHERE id=? AND status=?",
                    (OutboxStatus.PASSIVE, outbox_id, OutboxStatus.PENDING),
                )
                if cursor.rowcount != 1:
                    break
                taken.append(outbox_id)
            if not taken:
                return []
            marks = ",".join("?" * len(taken))
            return conn.execute(f"SELECT * FROM outbox WHERE id IN ({marks}) ORDER BY id", taken).fetchall()  # noqa: S608 - placeholders only

        return [self._claimed(r) for r in await self._run(claim)]

    async def release_passive(self, ids: Sequence[int], now: datetime) -> int:
        wanted = list(ids)
        if not wanted:
            return 0
        now_s = ts(now)

        def release(conn: sqlite3.Connection) -> int:
            cursor = conn.executemany(
                "UPDATE outbox SET next_attempt_at=? WHERE id=? AND status=? AND next_attempt_at > ?",
                [(now_s, outbox_id, OutboxStatus.PENDING, now_s) for outbox_id in wanted],
            )
            return int(cursor.rowcount)

        return await self._run(release, mode=SINGLE)

    async def reclaim_leases(self) -> int:
        """As ``SqlConversationStore.reclaim_leases``."""

        def reclaim(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "UPDATE outbox SET status=?, lease_until=NULL WHERE status=?",
                (OutboxStatus.PENDING, OutboxStatus.SENDING),
            )
            return int(cursor.rowcount)

        return await self._run(reclaim, mode=SINGLE)

    async def release_held(self, key: ConversationKey) -> int:
        def release(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "UPDATE outbox SET status=?, last_error=? WHERE status=? AND conversation_id="
                "(SELECT id FROM conversations WHERE channel=? AND account=? AND user_id=?)",
                (
                    OutboxStatus.FAILED,
                    "held while staff owned the conversation",
                    OutboxStatus.HELD,
                    key.channel,
                    key.account,
                    key.user_id,
                ),
            )
            return int(cursor.rowcount)

        return await self._run(release)

    # ---- queries ------------------------------------------------------------------------------

    _KEY = "channel=? AND account=? AND user_id=?"

    async def owner_of(self, key: ConversationKey) -> str:
        def owner(conn: sqlite3.Connection) -> str:
            row = conn.execute(
                f"SELECT owner FROM conversations WHERE {self._KEY}",  # noqa: S608 - constant text
                (key.channel, key.account, key.user_id),
            ).fetchone()
            return str(row[0]) if row is not None else "bot"

        return await self._run(owner, mode=READ)

    async def get(self, key: ConversationKey) -> ConversationRow | None:
        def get(conn: sqlite3.Connection) -> ConversationRow | None:
            row = conn.execute(
                f"SELECT * FROM conversations WHERE {self._KEY}",  # noqa: S608 - constant text
                (key.channel, key.account, key.user_id),
            ).fetchone()
            if row is None:
                return None
            return ConversationRow(
                conversation_id=row["id"],
                key=key,
                owner=row["owner"],
                flow=row["flow"],
                platform_account_id=row["platform_account_id"],
                updated_at=from_ts(row["updated_at"]) or datetime.now(UTC),
                last_inbound_at=from_ts(row["last_inbound_at"]),
                state=json_text.loads(row["state"]),
            )

        return await self._run(get, mode=READ)

    async def keys_for_account(self, platform_account_id: str) -> list[ConversationKey]:
        def keys(conn: sqlite3.Connection) -> list[ConversationKey]:
            rows = conn.execute(
                "SELECT channel, account, user_id FROM conversations WHERE platform_account_id=?"
                " ORDER BY last_inbound_at IS NULL, last_inbound_at DESC, id DESC",
                (platform_account_id,),
            ).fetchall()
            return [ConversationKey(r[0], r[1], r[2]) for r in rows]

        return await self._run(keys, mode=READ)

    async def due_waits(self, now: datetime, limit: int) -> list[ConversationKey]:
        def due(conn: sqlite3.Connection) -> list[ConversationKey]:
            rows = conn.execute(
                "SELECT channel, account, user_id FROM conversations WHERE wait_deadline IS NOT NULL"
                " AND wait_deadline <= ? ORDER BY wait_deadline LIMIT ?",
                (ts(now), limit),
            ).fetchall()
            return [ConversationKey(r[0], r[1], r[2]) for r in rows]

        return await self._run(due, mode=READ)

    async def delivered(self, key: ConversationKey, after_id: int, limit: int) -> list[OutboundMessage]:
        def delivered(conn: sqlite3.Connection) -> list[OutboundMessage]:
            rows = conn.execute(
                "SELECT o.* FROM outbox o JOIN conversations c ON c.id = o.conversation_id"
                " WHERE c.channel=? AND c.account=? AND c.user_id=? AND o.id > ? AND o.status IN (?, ?)"
                " ORDER BY o.id LIMIT ?",
                (
                    key.channel,
                    key.account,
                    key.user_id,
                    after_id,
                    OutboxStatus.SENT,
                    OutboxStatus.PASSIVE,
                    limit,
                ),
            ).fetchall()
            return [self._message(r) for r in rows]

        return await self._run(delivered, mode=READ)

    async def undelivered(self, key: ConversationKey, limit: int) -> list[tuple[OutboundMessage, str]]:
        statuses = list(UNDELIVERED)

        def undelivered(conn: sqlite3.Connection) -> list[tuple[OutboundMessage, str]]:
            rows = conn.execute(
                "SELECT o.* FROM outbox o JOIN conversations c ON c.id = o.conversation_id"
                " WHERE c.channel=? AND c.account=? AND c.user_id=? AND o.status IN (?, ?, ?)"
                " ORDER BY o.id LIMIT ?",
                (key.channel, key.account, key.user_id, *statuses, limit),
            ).fetchall()
            return [(self._message(r), UNDELIVERED[r["status"]]) for r in rows]

        return await self._run(undelivered, mode=READ)

    async def inbound_log(self, key: ConversationKey, limit: int) -> list[dict[str, Any]]:
        def log_of(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT r.* FROM inbound_receipts r JOIN conversations c ON c.id = r.conversation_id"
                " WHERE c.channel=? AND c.account=? AND c.user_id=? ORDER BY r.id DESC LIMIT ?",
                (key.channel, key.account, key.user_id, limit),
            ).fetchall()
            return [
                {
                    "id": r["id"],
                    "message_id": r["message_id"],
                    "kind": r["kind"],
                    "body": json_text.loads(r["body"]),
                    "at": from_ts(r["received_at"]),
                }
                for r in reversed(rows)
            ]

        return await self._run(log_of, mode=READ)

    async def cursor(self, name: str) -> int:
        def cursor(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT position FROM event_cursors WHERE name=?", (name,)).fetchone()
            return int(row[0]) if row is not None else 0

        return await self._run(cursor, mode=READ)

    async def write(
        self, statement: sa.Insert | sa.Update | sa.Delete, params: Mapping[str, Any] | None = None
    ) -> int:
        """A SQLAlchemy statement, compiled here and run inside the store's current
        batch (group commit); values are written in the formats SQLAlchemy's SQLite
        readers expect, as everything in this module is.

        A statement written with ``params`` is a prepared one its caller keeps: it is compiled
        once and reused (see ``TableWrites``). One written without them carries its values and
        is compiled each time."""
        sql, values = self._bound(statement, params)

        def write(conn: sqlite3.Connection) -> int:
            return int(conn.execute(sql, values).rowcount)

        return await self._run(write, mode=SINGLE)

    def _bound(
        self, statement: sa.Insert | sa.Update | sa.Delete, params: Mapping[str, Any] | None
    ) -> tuple[str, tuple[Any, ...]]:
        """The SQL text and positional values of a ``write`` (see there)."""
        if params is None:
            compiled = statement.compile(
                dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True}
            )
            bound = compiled.construct_params()
        else:
            compiled = self._prepared(statement)
            bound = compiled.construct_params(dict(params))
        return str(compiled), tuple(_sql_value(bound[name]) for name in compiled.positiontup or ())

    async def exists(self, statement: sa.Select[Any], params: Mapping[str, Any]) -> bool:
        """Read in the store's batch, before its writes: no write transaction, no async pool
        checkout and none of the SQLAlchemy reader thread's round trips."""
        compiled = self._prepared(statement)
        bound = compiled.construct_params(dict(params))
        sql = f"SELECT EXISTS ({compiled})"
        values = tuple(_sql_value(bound[name]) for name in compiled.positiontup or ())

        def exists(conn: sqlite3.Connection) -> bool:
            return bool(conn.execute(sql, values).fetchone()[0])

        return await self._run(exists, mode=READ)

    def _prepared(self, statement: sa.Insert | sa.Update | sa.Delete | sa.Select[Any]) -> SQLCompiler:
        entry = self._compiled.get(id(statement))
        # the statement is kept beside its compiled form, so its id cannot be reused meanwhile
        if entry is not None and entry[0] is statement:
            return entry[1]
        if len(self._compiled) >= MAX_PREPARED:  # callers keep a handful; this is a safety net
            self._compiled.clear()
        compiled = statement.compile(dialect=self.engine.dialect)
        if "POSTCOMPILE" in str(compiled):
            raise ValueError("a prepared statement cannot expand IN lists; pass its values inline")
        self._compiled[id(statement)] = (statement, compiled)
        return compiled

    async def set_cursor(self, name: str, position: int, now: datetime) -> None:
        await self._execute(
            "INSERT INTO event_cursors (name, position, updated_at) VALUES (?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET position=excluded.position, updated_at=excluded.updated_at"
            " WHERE event_cursors.position < excluded.position",
            (name, position, ts(now)),
        )
