"""The conversation store for SQLite, built for the embedded default's throughput.

One ``sqlite3`` connection lives in one thread, and every operation is a small function that
thread runs. Operations queued together run in ONE transaction (group commit), each inside its
own savepoint so that one refusal (a version conflict) does not undo its neighbours; results
are handed back only after that transaction has committed. So the promise is the same as
``SqlConversationStore``'s (a reply exists only once the state that produced it is committed)
at a fraction of the cost: one thread hop and one commit per batch instead of several per
message. The tests/contract suite runs against both.

The schema is the one the migrations create; other modules keep using SQLAlchemy on the same
file (``.engine``) for their own tables. Timestamps are written in SQLAlchemy's SQLite format
(UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``), JSON as text, so both readers agree.
"""

# Over 600 lines: every role of the conversation store (conversations, outbox, transcripts,
# cursors, table writes) implemented for the group-commit writer thread; each role's SQL must
# run inside the same batch transaction, so they share the writer and its savepoint helper.

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

from bot.engine.messages import ConversationKey, Origin, OutboundMessage, Reply
from bot.engine.ports import Clock, SystemClock
from bot.engine.store import UNDELIVERED, Commit, ConversationRow, OutboxStatus, Snapshot
from bot.errors import StorageError, VersionConflict

log = logging.getLogger("sealbot.store")

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]
# an operation, and where its outcome goes: the caller's event loop and future
Job = tuple[Operation, bool, asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
Outcome = tuple["asyncio.Future[Any]", Any, Exception | None]

MAX_BATCH = 256
MAX_PREPARED = 256


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def from_ts(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _sql_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, dict | list):
        return _dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


class _Writer(threading.Thread):
    """Runs queued operations in batches, one transaction per batch."""

    def __init__(self, path: str) -> None:
        super().__init__(name="sqlite-store", daemon=True)
        self.path = path
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.ready: Future[None] = Future()
        self.batches = 0  # committed batches that wrote (read from other threads: an int is atomic)

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.row_factory = sqlite3.Row
        except sqlite3.Error as exc:
            self.ready.set_exception(StorageError(f"cannot open {self.path}: {exc}"))
            return
        self.ready.set_result(None)
        try:
            while True:
                first = self.jobs.get()
                if first is None:
                    return
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        item = self.jobs.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self.jobs.put(None)  # finish this batch, then stop
                        break
                    batch.append(item)
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Job]) -> None:
        outcomes: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        changes_before = conn.total_changes
        try:
            conn.execute("BEGIN IMMEDIATE")
            for operation, atomic, loop, future in batch:
                # A savepoint isolates an operation of several statements, so that its refusal
                # (a version conflict) undoes it alone; one statement is atomic by itself.
                if atomic:
                    conn.execute("SAVEPOINT op")
                error: Exception | None = None
                try:
                    result = operation(conn)
                except Exception as exc:  # handed to the awaiting caller, translated
                    if atomic:
                        conn.execute("ROLLBACK TO op")
                    result, error = None, _translated(exc)
                if atomic:
                    conn.execute("RELEASE op")
                outcomes.setdefault(loop, []).append((future, result, error))
            wrote = conn.total_changes != changes_before
            conn.execute("COMMIT")
            if wrote:  # a batch of reads only is no write transaction
                self.batches += 1
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = StorageError(f"sqlite batch failed: {exc}")
            outcomes = {}
            for _, _, loop, future in batch:
                outcomes.setdefault(loop, []).append((future, None, failure))
        # Only now, after COMMIT, do callers learn their results: one wake-up per event loop.
        for loop, results in outcomes.items():
            try:
                loop.call_soon_threadsafe(_deliver, results)
            except RuntimeError:
                log.warning("event loop closed before a store result was delivered")


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
        self._writer.start()
        self._writer.ready.result(timeout=30)

    async def _run(self, operation: Callable[[sqlite3.Connection], T], *, atomic: bool = True) -> T:
        """Run ``operation`` in the writer thread; ``atomic=False`` for a single statement."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._writer.jobs.put((operation, atomic, loop, future))
        return await future

    @property
    def write_transactions(self) -> int:
        return self._writer.batches

    async def close(self) -> None:
        self._writer.jobs.put(None)
        await asyncio.to_thread(self._writer.join, 30)

    # ---- the handling transaction -------------------------------------------------------------

    async def load(self, key: ConversationKey, message_id: str | None) -> Snapshot:
        def load(conn: sqlite3.Connection) -> tuple[int, int, str, tuple[int, ...] | None] | None:
            row = conn.execute(
                "SELECT id, version, state FROM conversations WHERE channel=? AND account=? AND user_id=?",
                (key.channel, key.account, key.user_id),
            ).fetchone()
            if row is None:
                return None
            duplicate = None
            if message_id is not None:
                receipt = conn.execute(
                    "SELECT reply_ids FROM inbound_receipts WHERE conversation_id=? AND message_id=?",
                    (row["id"], message_id),
                ).fetchone()
                if receipt is not None:
                    duplicate = tuple(json.loads(receipt["reply_ids"]))
            return row["id"], row["version"], row["state"], duplicate

        found = await self._run(load, atomic=False)
        if found is None:
            return Snapshot(None, 0, None)
        conversation_id, version, state_json, duplicate = found
        # JSON is decoded here, on the caller's thread, so the writer thread spends its time
        # in SQLite (which releases the GIL) and the two overlap.
        return Snapshot(conversation_id, version, json.loads(state_json), duplicate)

    async def commit(
        self, key: ConversationKey, snapshot: Snapshot, change: Commit, now: datetime
    ) -> list[OutboundMessage]:
        # Encoded on the caller's thread (see ``load``).
        state_json = _dumps(change.state)
        payloads = [_dumps({"key": str(key), "reply": queued.reply.to_dict()}) for queued in change.replies]
        body_json = _dumps(change.inbound_body)

        def commit(conn: sqlite3.Connection) -> list[OutboundMessage]:
            try:
                conv_id = self._write_state(conn, key, snapshot, change, now, state_json)
                messages = []
                for queued, payload in zip(change.replies, payloads, strict=True):
                    cursor = conn.execute(
                        "INSERT INTO outbox (conversation_id, channel, origin, payload, status, attempts,"
                        " next_attempt_at, in_reply_to, created_at) VALUES (?,?,?,?,?,0,?,?,?)",
                        (
                            conv_id,
                            key.channel,
                            queued.origin.value,
                            payload,
                            OutboxStatus.PENDING,
                            ts(queued.not_before or now),
                            change.in_reply_to,
                            ts(now),
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
                            _dumps([m.outbox_id for m in messages]),
                            ts(now),
                        ),
                    )
                return messages
            except sqlite3.IntegrityError as exc:
                raise VersionConflict(str(key)) from exc

        return await self._run(commit)

    @staticmethod
    def _write_state(
        conn: sqlite3.Connection,
        key: ConversationKey,
        snapshot: Snapshot,
        change: Commit,
        now: datetime,
        state: str,
    ) -> int:
        touched = ts(now) if change.touched_by_user else None
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
                    ts(now),
                    ts(now),
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
                ts(now),
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
    def _message(row: sqlite3.Row, attempt: int | None = None) -> OutboundMessage:
        payload = json.loads(row["payload"])
        return OutboundMessage(
            outbox_id=row["id"],
            key=ConversationKey.parse(payload["key"]),
            reply=Reply.from_dict(payload["reply"]),
            origin=Origin(row["origin"]),
            created_at=from_ts(row["created_at"]) or datetime.now(UTC),
            in_reply_to=row["in_reply_to"],
            attempt=attempt if attempt is not None else max(1, row["attempts"]),
        )

    async def outbound(self, ids: Sequence[int]) -> list[OutboundMessage]:
        if not ids:
            return []
        wanted = list(ids)

        def outbound(conn: sqlite3.Connection) -> list[OutboundMessage]:
            marks = ",".join("?" * len(wanted))
            rows = conn.execute(f"SELECT * FROM outbox WHERE id IN ({marks}) ORDER BY id", wanted).fetchall()  # noqa: S608 - placeholders only
            return [self._message(r) for r in rows]

        return await self._run(outbound, atomic=False)

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[OutboundMessage]:
        """As ``SqlConversationStore.claim_due``: oldest first, one at a time per conversation."""

        def claim(conn: sqlite3.Connection) -> list[tuple[sqlite3.Row, int]]:
            now_s, until = ts(now), ts(now + lease)
            busy = {
                r[0]
                for r in conn.execute(
                    "SELECT conversation_id FROM outbox WHERE status=? AND lease_until > ?",
                    (OutboxStatus.SENDING, now_s),
                )
            }
            # Only rows that are due AND the oldest undelivered of their conversation: a
            # window over all pending rows would fill up with replies held for a passive answer
            # (or pushes scheduled for later) and starve the due ones behind it.
            candidates = conn.execute(
                "SELECT o.* FROM outbox o WHERE"
                " ((o.status=? AND o.next_attempt_at <= ?) OR (o.status=? AND o.lease_until <= ?))"
                " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.conversation_id = o.conversation_id"
                " AND p.id < o.id AND p.status IN (?, ?))"
                " ORDER BY o.id LIMIT ?",
                (
                    OutboxStatus.PENDING,
                    now_s,
                    OutboxStatus.SENDING,
                    now_s,
                    OutboxStatus.PENDING,
                    OutboxStatus.SENDING,
                    limit * 4,
                ),
            ).fetchall()
            claimed: list[tuple[sqlite3.Row, int]] = []
            seen: set[int] = set(busy)
            for row in candidates:
                if row["conversation_id"] in seen:
                    continue
                seen.add(row["conversation_id"])
                claimed.append((row, row["attempts"] + 1))
                if len(claimed) >= limit:
                    break
            conn.executemany(
                "UPDATE outbox SET status=?, lease_until=?, attempts=attempts+1 WHERE id=?",
                [(OutboxStatus.SENDING, until, row["id"]) for row, _ in claimed],
            )
            return claimed

        # Rows become messages (JSON decoding) on the caller's thread, as in ``load``.
        return [self._message(row, attempt) for row, attempt in await self._run(claim)]

    async def mark_sent_many(self, outbox_ids: Sequence[int], now: datetime) -> None:
        rows = [(OutboxStatus.SENT, ts(now), outbox_id) for outbox_id in outbox_ids]

        def mark(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE outbox SET status=?, sent_at=?, lease_until=NULL, last_error=NULL WHERE id=?", rows
            )

        await self._run(mark, atomic=False)

    async def owners_of(self, keys: Sequence[ConversationKey]) -> dict[ConversationKey, str]:
        wanted = list(keys)

        def owners(conn: sqlite3.Connection) -> dict[ConversationKey, str]:
            found = {key: "bot" for key in wanted}
            for key in wanted:
                row = conn.execute(
                    f"SELECT owner FROM conversations WHERE {self._KEY}",  # noqa: S608 - constant text
                    (key.channel, key.account, key.user_id),
                ).fetchone()
                if row is not None:
                    found[key] = str(row[0])
            return found

        return await self._run(owners, atomic=False)

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

        await self._run(execute, atomic=False)

    async def claim_passive(
        self, ids: Sequence[int], *, now: Clock | None = None, until: datetime | None = None
    ) -> list[OutboundMessage]:
        """As ``SqlConversationStore.claim_passive``; ``now`` is read in the writer thread,
        inside the transaction that claims."""
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
            earlier = conn.execute(
                "SELECT 1 FROM outbox WHERE conversation_id=? AND id<? AND (status=?"
                " OR (status=? AND in_reply_to IS NOT NULL)) LIMIT 1",
                (first[0], wanted[0], OutboxStatus.SENDING, OutboxStatus.PENDING),
            ).fetchone()
            if earlier is not None:
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

        return [self._message(r) for r in await self._run(claim)]

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

        return await self._run(release, atomic=False)

    async def reclaim_leases(self) -> int:
        """As ``SqlConversationStore.reclaim_leases``."""

        def reclaim(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "UPDATE outbox SET status=?, lease_until=NULL WHERE status=?",
                (OutboxStatus.PENDING, OutboxStatus.SENDING),
            )
            return int(cursor.rowcount)

        return await self._run(reclaim, atomic=False)

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

        return await self._run(owner, atomic=False)

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
                state=json.loads(row["state"]),
            )

        return await self._run(get, atomic=False)

    async def keys_for_account(self, platform_account_id: str) -> list[ConversationKey]:
        def keys(conn: sqlite3.Connection) -> list[ConversationKey]:
            rows = conn.execute(
                "SELECT channel, account, user_id FROM conversations WHERE platform_account_id=?"
                " ORDER BY last_inbound_at IS NULL, last_inbound_at DESC, id DESC",
                (platform_account_id,),
            ).fetchall()
            return [ConversationKey(r[0], r[1], r[2]) for r in rows]

        return await self._run(keys, atomic=False)

    async def due_waits(self, now: datetime, limit: int) -> list[ConversationKey]:
        def due(conn: sqlite3.Connection) -> list[ConversationKey]:
            rows = conn.execute(
                "SELECT channel, account, user_id FROM conversations WHERE wait_deadline IS NOT NULL"
                " AND wait_deadline <= ? ORDER BY wait_deadline LIMIT ?",
                (ts(now), limit),
            ).fetchall()
            return [ConversationKey(r[0], r[1], r[2]) for r in rows]

        return await self._run(due, atomic=False)

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

        return await self._run(delivered, atomic=False)

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

        return await self._run(undelivered, atomic=False)

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
                    "body": json.loads(r["body"]),
                    "at": from_ts(r["received_at"]),
                }
                for r in reversed(rows)
            ]

        return await self._run(log_of, atomic=False)

    async def cursor(self, name: str) -> int:
        def cursor(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT position FROM event_cursors WHERE name=?", (name,)).fetchone()
            return int(row[0]) if row is not None else 0

        return await self._run(cursor, atomic=False)

    async def write(
        self, statement: sa.Insert | sa.Update | sa.Delete, params: Mapping[str, Any] | None = None
    ) -> int:
        """A SQLAlchemy statement, compiled here and run by the writer thread inside its
        current batch (group commit); values are written in the formats SQLAlchemy's SQLite
        readers expect, as everything in this module is.

        A statement written with ``params`` is a prepared one its caller keeps: it is compiled
        once and reused (see ``TableWrites``). One written without them carries its values and
        is compiled each time."""
        if params is None:
            compiled = statement.compile(
                dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True}
            )
            bound = compiled.construct_params()
        else:
            compiled = self._prepared(statement)
            bound = compiled.construct_params(dict(params))
        sql = str(compiled)
        values = tuple(_sql_value(bound[name]) for name in compiled.positiontup or ())

        def write(conn: sqlite3.Connection) -> int:
            return int(conn.execute(sql, values).rowcount)

        return await self._run(write, atomic=False)

    async def exists(self, statement: sa.Select[Any], params: Mapping[str, Any]) -> bool:
        """Read by the writer thread inside its current batch: a batch that changes nothing
        is no write transaction, and the read skips the async pool's checkout and the
        reader thread's round trips."""
        compiled = self._prepared(statement)
        bound = compiled.construct_params(dict(params))
        sql = f"SELECT EXISTS ({compiled})"
        values = tuple(_sql_value(bound[name]) for name in compiled.positiontup or ())

        def exists(conn: sqlite3.Connection) -> bool:
            return bool(conn.execute(sql, values).fetchone()[0])

        return await self._run(exists, atomic=False)

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
