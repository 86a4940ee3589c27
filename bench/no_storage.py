"""The engine of ``bench.forms`` on a store that does no storage work: a measuring instrument
(``bench.store_cost``, ``bench.instructions``), never a product. Apart from the contenders of
``bench.forms`` so that counting its instructions does not import python-telegram-bot and
aiogram with it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Protocol

from bench import engine_forms
from bench.workload import UserScript, as_the_service_runs, run_users
from bot.engine.messages import ConversationKey, OutboundMessage
from bot.engine.sqlite_store import encoded_commit
from bot.engine.store import Commit, Snapshot


class Hop(Protocol):
    """Where a call goes and comes back from before the store answers it."""

    async def initialize(self) -> None: ...

    async def shutdown(self) -> None: ...

    async def round_trip(self, argument: Any, answer: Any) -> Any:
        """``answer``, once the call (with ``argument``) has been there and back."""


class NoWorkStore:
    """The part of the conversation store this form uses (``load`` and ``commit``), kept in
    a dict; the state and the replies are JSON-encoded, and the state decoded when read, as the
    SQLite store does on the event loop. With ``hop``, every call goes there and back first, with
    what the SQLite store's operation would take and answer."""

    def __init__(self, hop: Hop | None = None) -> None:
        self._rows: dict[ConversationKey, tuple[int, int, str]] = {}
        self._next_outbox_id = 0
        self._hop = hop

    async def load(self, key: ConversationKey, message_id: str | None) -> Snapshot:
        row = self._rows.get(key)
        if self._hop is not None:
            row = await self._hop.round_trip((key.channel, key.account, key.user_id, message_id), row)
        if row is None:
            return Snapshot(None, 0, None)
        return Snapshot.from_text(row[0], row[1], row[2], None)  # decoded if read, as the store's

    async def commit(
        self, key: ConversationKey, snapshot: Snapshot, change: Commit, now: datetime
    ) -> list[OutboundMessage]:
        state, payloads, body = encoded_commit(key, change)
        ids = list(range(self._next_outbox_id + 1, self._next_outbox_id + 1 + len(payloads)))
        self._next_outbox_id += len(payloads)
        if self._hop is not None:
            written = (key.channel, key.account, key.user_id, snapshot.version, state, payloads, body)
            ids = await self._hop.round_trip(written, ids)
        conversation_id = snapshot.conversation_id or len(self._rows) + 1
        self._rows[key] = (conversation_id, snapshot.version + 1, state)
        messages = []
        for outbox_id, queued in zip(ids, change.replies, strict=True):
            messages.append(
                OutboundMessage(outbox_id, key, queued.reply, queued.origin, now, change.in_reply_to)
            )
        return messages


async def run_without_storage(
    user_scripts: list[UserScript], *, concurrency: int, hop: Hop | None
) -> dict[str, Any]:
    """The product's engine on an instrument store, with the collector set as the product's."""
    with as_the_service_runs():
        return await _run_without_storage(user_scripts, concurrency=concurrency, hop=hop)


async def _run_without_storage(
    user_scripts: list[UserScript], *, concurrency: int, hop: Hop | None
) -> dict[str, Any]:
    if hop is not None:
        await hop.initialize()
    engine = engine_forms.build_engine(NoWorkStore(hop))
    inbound = engine_forms.inbound_messages(user_scripts)
    replies = 0

    async def send(user: int, index: int, _text: str) -> None:
        nonlocal replies
        answered = await engine.handle(inbound[(user, index)])
        replies += len(answered)

    loop_cpu_before = time.thread_time()
    started = time.perf_counter()
    await run_users(user_scripts, send, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    loop_cpu = time.thread_time() - loop_cpu_before
    if hop is not None:
        await hop.shutdown()
    return {"messages": len(inbound), "replies": replies, "seconds": elapsed, "loop_cpu_seconds": loop_cpu}
