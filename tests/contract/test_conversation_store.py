"""The storage contract, through the role protocols (``Conversations``, ``Outbox``,
``Transcripts``, ``Cursors``): one suite run against every store on every backend."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.engine.in_band import AnswerWindow, InBandCommit, InBandPlan
from bot.engine.messages import ConversationKey, Option, Origin, Reply
from bot.engine.store import Commit, ConversationStore, OutboxStatus, QueuedReply, SideWrite, Snapshot
from bot.errors import VersionConflict

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
A = ConversationKey("telegram", "main", "1001")
B = ConversationKey("telegram", "main", "1002")
C = ConversationKey("wechat", "oa1", "o-xyz")


def change(
    *texts: str,
    message_id: str | None = None,
    state: dict[str, object] | None = None,
    account: str | None = None,
    deadline: datetime | None = None,
    owner: str = "bot",
    not_before: datetime | None = None,
    user: bool = True,
) -> Commit:
    return Commit(
        state=state if state is not None else {"n": 1},
        owner=owner,
        platform_account_id=account,
        flow=None,
        wait_deadline=deadline,
        message_id=message_id,
        inbound_kind="text",
        inbound_body={"text": "hi"},
        replies=[QueuedReply(Reply.text_reply(t), Origin.BOT, not_before) for t in texts],
        in_reply_to=message_id,
        touched_by_user=user,
    )


async def put(
    store: ConversationStore, key: ConversationKey, *texts: str, at: datetime = T0, **kw: object
) -> list[int]:
    snapshot = await store.load(key, None)
    messages = await store.commit(key, snapshot, change(*texts, **kw), at)  # type: ignore[arg-type]
    return [m.outbox_id for m in messages]


# ---- state and versions -------------------------------------------------------------------------


async def test_a_new_conversation_loads_empty(store: ConversationStore) -> None:
    assert await store.load(A, "m1") == Snapshot(None, 0, None)
    assert not (await store.load(A, "m1")).exists
    assert await store.get(A) is None
    assert await store.owner_of(A) == "bot"


async def test_commit_then_load_returns_the_state_and_the_next_version(store: ConversationStore) -> None:
    await store.commit(
        A, await store.load(A, None), change(state={"step": "name", "answers": {"名": "张三"}}), T0
    )
    first = await store.load(A, None)
    assert first.exists
    assert (first.version, first.state) == (1, {"step": "name", "answers": {"名": "张三"}})
    assert first.state is first.state  # decoded once, however often it is read
    await store.commit(A, first, change(state={"step": "kind"}), T0)
    second = await store.load(A, None)
    assert (second.version, second.state, second.conversation_id) == (
        2,
        {"step": "kind"},
        first.conversation_id,
    )


async def test_a_commit_from_a_stale_read_is_a_version_conflict(store: ConversationStore) -> None:
    await put(store, A, "hello")
    stale = await store.load(A, None)
    await store.commit(A, stale, change(state={"winner": True}), T0)
    with pytest.raises(VersionConflict):
        await store.commit(A, stale, change("lost reply", state={"winner": False}), T0)
    after = await store.load(A, None)
    assert after.state == {"winner": True}
    assert after.version == 2
    # The losing commit queued nothing.
    claimed = await store.claim_due(T0, limit=10, lease=LEASE)
    assert [m.reply.text for m in claimed] == ["hello"]


async def test_two_first_commits_of_one_conversation_conflict(store: ConversationStore) -> None:
    empty = await store.load(A, None)
    await store.commit(A, empty, change(state={"first": True}), T0)
    with pytest.raises(VersionConflict):
        await store.commit(A, empty, change(state={"first": False}), T0)
    assert (await store.load(A, None)).state == {"first": True}


async def test_concurrent_commits_from_one_read_let_exactly_one_win(store: ConversationStore) -> None:
    await put(store, A)
    read = await store.load(A, None)
    results = await asyncio.gather(
        *(store.commit(A, read, change(state={"by": i}), T0) for i in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, VersionConflict) for r in results if isinstance(r, BaseException))
    assert (await store.load(A, None)).version == 2


async def test_a_refused_commit_undoes_nothing_written_beside_it(store: ConversationStore) -> None:
    # Commits issued together share one transaction on the embedded store: the loser of a
    # version race must take back its own writes and no one else's.
    await put(store, A)
    await put(store, B)
    read_a, read_b = await store.load(A, None), await store.load(B, None)
    results = await asyncio.gather(
        store.commit(A, read_a, change("a-1", state={"a": 1}), T0),
        store.commit(A, read_a, change("a-2", state={"a": 2}), T0),
        store.commit(B, read_b, change("b", state={"b": 1}), T0),
        return_exceptions=True,
    )
    assert [isinstance(r, VersionConflict) for r in results].count(True) == 1
    assert not isinstance(results[2], BaseException)
    assert (await store.load(B, None)).state == {"b": 1}
    winner = (await store.load(A, None)).state
    texts = sorted(m.reply.text for m in await store.claim_due(T0, limit=10, lease=LEASE))
    assert texts == sorted([f"a-{winner['a']}", "b"])


# ---- receipts -------------------------------------------------------------------------------------


async def test_a_receipt_makes_the_same_delivery_a_duplicate_with_its_replies(
    store: ConversationStore,
) -> None:
    ids = await put(store, A, "one", "two", message_id="upd-1")
    snapshot = await store.load(A, "upd-1")
    assert snapshot.duplicate_of == tuple(ids)
    assert [m.reply.text for m in await store.outbound(snapshot.duplicate_of)] == ["one", "two"]
    assert (await store.load(A, "upd-2")).duplicate_of is None


async def test_a_delivery_with_no_replies_is_still_a_duplicate(store: ConversationStore) -> None:
    await put(store, A, message_id="silent")
    assert (await store.load(A, "silent")).duplicate_of == ()


async def test_committing_the_same_delivery_twice_is_refused(store: ConversationStore) -> None:
    await put(store, A, "once", message_id="upd-1")
    with pytest.raises(VersionConflict):
        await put(store, A, "twice", message_id="upd-1")
    assert [m.reply.text for m in await store.claim_due(T0, limit=10, lease=LEASE)] == ["once"]


async def test_receipts_are_per_conversation(store: ConversationStore) -> None:
    await put(store, A, "to a", message_id="42")
    await put(store, B, "to b", message_id="42")
    assert (await store.load(B, "42")).duplicate_of is not None
    assert (await store.load(C, "42")).duplicate_of is None


async def test_the_inbound_log_keeps_deliveries_in_order(store: ConversationStore) -> None:
    for i in range(3):
        await put(store, A, message_id=f"m{i}", at=T0 + timedelta(seconds=i))
    log = await store.inbound_log(A, 2)
    assert [e["message_id"] for e in log] == ["m1", "m2"]
    assert log[-1]["at"] == T0 + timedelta(seconds=2)
    assert log[-1]["body"] == {"text": "hi"}


# ---- the outbox -------------------------------------------------------------------------------


async def test_claims_take_the_oldest_message_of_each_conversation_one_at_a_time(
    store: ConversationStore,
) -> None:
    a_ids = await put(store, A, "a1", "a2", "a3")
    b_ids = await put(store, B, "b1", "b2")

    first = await store.claim_due(T0, limit=10, lease=LEASE)
    assert [m.outbox_id for m in first] == [a_ids[0], b_ids[0]]
    assert all(m.attempt == 1 for m in first)
    # While a1 and b1 are out, nothing else of A or B may leave (that would reorder them).
    assert await store.claim_due(T0, limit=10, lease=LEASE) == []

    await store.mark_sent_many([a_ids[0]], T0)
    assert [m.outbox_id for m in await store.claim_due(T0, limit=10, lease=LEASE)] == [a_ids[1]]
    await store.mark_sent_many([b_ids[0]], T0)
    await store.mark_sent_many([a_ids[1]], T0)
    assert [m.outbox_id for m in await store.claim_due(T0, limit=10, lease=LEASE)] == [a_ids[2], b_ids[1]]


async def test_claims_respect_the_limit_oldest_first(store: ConversationStore) -> None:
    a = await put(store, A, "a")
    b = await put(store, B, "b")
    c = await put(store, C, "c")
    assert [m.outbox_id for m in await store.claim_due(T0, limit=2, lease=LEASE)] == [a[0], b[0]]
    assert [m.outbox_id for m in await store.claim_due(T0, limit=2, lease=LEASE)] == [c[0]]


async def test_concurrent_claims_never_hand_out_one_message_twice(store: ConversationStore) -> None:
    for key in (A, B, C):
        await put(store, key, "x", "y")
    rounds = await asyncio.gather(*(store.claim_due(T0, limit=10, lease=LEASE) for _ in range(4)))
    ids = [m.outbox_id for claimed in rounds for m in claimed]
    assert len(ids) == len(set(ids)) == 3


async def test_an_expired_lease_lets_another_worker_take_the_message_over(
    store: ConversationStore,
) -> None:
    (a1, _a2) = await put(store, A, "a1", "a2")
    assert [m.outbox_id for m in await store.claim_due(T0, limit=10, lease=LEASE)] == [a1]
    assert await store.claim_due(T0 + timedelta(seconds=59), limit=10, lease=LEASE) == []
    retaken = await store.claim_due(T0 + timedelta(seconds=61), limit=10, lease=LEASE)
    assert [(m.outbox_id, m.attempt) for m in retaken] == [(a1, 2)]


async def test_a_message_not_yet_due_holds_back_the_later_ones(store: ConversationStore) -> None:
    held = await put(store, A, "passive window", not_before=T0 + timedelta(seconds=5))
    later = await put(store, A, "later")
    assert await store.claim_due(T0, limit=10, lease=LEASE) == []
    assert [
        m.outbox_id for m in await store.claim_due(T0 + timedelta(seconds=5), limit=10, lease=LEASE)
    ] == held
    await store.mark_sent_many([held[0]], T0)
    assert [
        m.outbox_id for m in await store.claim_due(T0 + timedelta(seconds=5), limit=10, lease=LEASE)
    ] == later


async def test_mark_retry_returns_the_message_when_due_with_the_next_attempt(
    store: ConversationStore,
) -> None:
    (a1,) = await put(store, A, "a1")
    await store.claim_due(T0, limit=10, lease=LEASE)
    await store.mark_retry(a1, T0 + timedelta(seconds=30), "timeout")
    assert await store.claim_due(T0 + timedelta(seconds=29), limit=10, lease=LEASE) == []
    again = await store.claim_due(T0 + timedelta(seconds=30), limit=10, lease=LEASE)
    assert [(m.outbox_id, m.attempt) for m in again] == [(a1, 2)]


async def test_mark_final_takes_the_message_out_for_good(store: ConversationStore) -> None:
    a1, a2 = await put(store, A, "a1", "a2")
    await store.claim_due(T0, limit=10, lease=LEASE)
    await store.mark_final(a1, OutboxStatus.FAILED, "blocked by user")
    later = T0 + timedelta(days=1)
    assert [m.outbox_id for m in await store.claim_due(later, limit=10, lease=LEASE)] == [a2]
    await store.mark_sent_many([a2], later)
    assert await store.claim_due(later, limit=10, lease=LEASE) == []
    assert [m.outbox_id for m in await store.delivered(A, 0, 10)] == [a2]


async def test_claim_passive_never_returns_a_message_the_dispatcher_claimed(
    store: ConversationStore,
) -> None:
    a1, a2 = await put(store, A, "a1", "a2")
    claimed = await store.claim_due(T0, limit=10, lease=LEASE)
    assert [m.outbox_id for m in claimed] == [a1]
    # a1 is on its way through the API: a passive a2 would overtake it in the chat, so the
    # claim stops at a1 and takes nothing (issue 18: replies in order)
    assert await store.claim_passive([a1, a2]) == []
    assert await store.claim_passive([a2]) == []
    await store.mark_sent_many([a1], T0)
    (a3,) = await put(store, A, "a3", message_id="m2")
    passive = await store.claim_passive([a3])
    assert [m.outbox_id for m in passive] == [a3]
    assert await store.claim_passive([a3]) == []  # and never twice
    assert [m.outbox_id for m in await store.claim_due(T0 + timedelta(hours=1), limit=10, lease=LEASE)] == [
        a2
    ]
    await store.mark_sent_many([a2], T0)
    assert await store.claim_due(T0 + timedelta(hours=1), limit=10, lease=LEASE) == []
    assert [m.outbox_id for m in await store.delivered(A, 0, 10)] == [a1, a2, a3]


async def test_the_dispatcher_never_claims_a_message_carried_passively(store: ConversationStore) -> None:
    (a1,) = await put(store, A, "a1")
    assert [m.outbox_id for m in await store.claim_passive([a1])] == [a1]
    assert await store.claim_due(T0, limit=10, lease=LEASE) == []


async def test_delivered_lists_what_reached_the_user_after_a_position(store: ConversationStore) -> None:
    ids = await put(store, A, "1", "2", "3", "4")
    await put(store, B, "other user")
    for outbox_id in ids[:3]:
        await store.claim_due(T0, limit=10, lease=LEASE)
        await store.mark_sent_many([outbox_id], T0)
    assert [m.reply.text for m in await store.delivered(A, 0, 10)] == ["1", "2", "3"]
    assert [m.reply.text for m in await store.delivered(A, ids[0], 1)] == ["2"]
    assert await store.delivered(A, ids[2], 10) == []
    assert await store.delivered(C, 0, 10) == []


async def test_release_held_discards_bot_messages_held_for_staff(store: ConversationStore) -> None:
    a1, a2 = await put(store, A, "a1", "a2")
    await store.claim_due(T0, limit=10, lease=LEASE)
    await store.mark_final(a1, OutboxStatus.HELD, "owner is staff:alice")
    assert await store.release_held(A) == 1
    assert await store.release_held(A) == 0
    assert [m.outbox_id for m in await store.claim_due(T0, limit=10, lease=LEASE)] == [a2]


async def test_outbound_messages_keep_their_content(store: ConversationStore) -> None:
    reply = Reply.text_reply("请选择：", options=())
    snapshot = await store.load(C, None)
    queued = replace(change(message_id="x"), replies=[QueuedReply(reply, Origin.STAFF)])
    (message,) = await store.commit(C, snapshot, queued, T0)
    (claimed,) = await store.claim_due(T0, limit=1, lease=LEASE)
    assert (claimed.key, claimed.reply, claimed.origin, claimed.in_reply_to) == (C, reply, Origin.STAFF, "x")
    assert claimed.outbox_id == message.outbox_id
    assert claimed.created_at == T0


# ---- queries ------------------------------------------------------------------------------------


async def test_keys_for_account_are_most_recently_active_first(store: ConversationStore) -> None:
    await put(store, A, account="acc-1", at=T0)
    await put(store, B, account="acc-1", at=T0 + timedelta(minutes=5))
    await put(store, C, account="acc-1", at=T0 + timedelta(minutes=1), user=False)  # never wrote
    await put(store, ConversationKey("web", "site", "w1"), account="acc-2", at=T0)
    assert await store.keys_for_account("acc-1") == [B, A, C]
    # Activity moves a conversation to the front.
    await put(store, A, account="acc-1", at=T0 + timedelta(minutes=9))
    assert await store.keys_for_account("acc-1") == [A, B, C]
    assert await store.keys_for_account("nobody") == []


async def test_owner_and_row_reflect_the_last_commit(store: ConversationStore) -> None:
    await put(store, A, owner="staff:alice", account="acc-1", at=T0)
    assert await store.owner_of(A) == "staff:alice"
    row = await store.get(A)
    assert row is not None
    assert (row.key, row.owner, row.platform_account_id, row.last_inbound_at) == (
        A,
        "staff:alice",
        "acc-1",
        T0,
    )


async def test_due_waits_are_the_passed_deadlines_earliest_first(store: ConversationStore) -> None:
    await put(store, A, deadline=T0 + timedelta(minutes=30))
    await put(store, B, deadline=T0 + timedelta(minutes=10))
    await put(store, C, deadline=T0 + timedelta(hours=5))
    await put(store, ConversationKey("web", "site", "w1"))  # not waiting
    assert await store.due_waits(T0, 10) == []
    assert await store.due_waits(T0 + timedelta(minutes=30), 10) == [B, A]
    assert await store.due_waits(T0 + timedelta(minutes=30), 1) == [B]
    # A wait that ended clears its deadline.
    await put(store, B, deadline=None)
    assert await store.due_waits(T0 + timedelta(days=1), 10) == [A, C]


async def test_cursors_only_move_forward(store: ConversationStore) -> None:
    assert await store.cursor("platform-events") == 0
    await store.set_cursor("platform-events", 5, T0)
    assert await store.cursor("platform-events") == 5
    await store.set_cursor("platform-events", 3, T0)
    assert await store.cursor("platform-events") == 5
    await store.set_cursor("platform-events", 5, T0)
    assert await store.cursor("platform-events") == 5
    await store.set_cursor("platform-events", 9, T0)
    assert await store.cursor("platform-events") == 9
    assert await store.cursor("other") == 0


async def test_concurrent_first_cursor_writes_keep_the_highest(store: ConversationStore) -> None:
    results = await asyncio.gather(
        *(store.set_cursor("feed", n, T0) for n in (3, 7, 5)), return_exceptions=True
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    assert await store.cursor("feed") == 7


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value


async def test_a_passive_claim_at_or_after_its_deadline_takes_nothing(store: ConversationStore) -> None:
    (a1,) = await put(store, A, "a1", message_id="m1", not_before=T0 + timedelta(seconds=5))
    deadline = T0 + timedelta(seconds=4.5)
    assert await store.claim_passive([a1], now=FixedClock(deadline), until=deadline) == []
    late = FixedClock(deadline + timedelta(milliseconds=1))
    assert await store.claim_passive([a1], now=late, until=deadline) == []
    # still the outbox's: released, it goes out at once through the dispatcher
    assert await store.release_passive([a1], T0 + timedelta(seconds=4.6)) == 1
    due = await store.claim_due(T0 + timedelta(seconds=4.6), limit=10, lease=LEASE)
    assert [m.outbox_id for m in due] == [a1]
    in_time = FixedClock(deadline - timedelta(milliseconds=1))
    (b1,) = await put(store, B, "b1", message_id="m1", not_before=T0 + timedelta(seconds=5))
    assert [m.outbox_id for m in await store.claim_passive([b1], now=in_time, until=deadline)] == [b1]


async def test_a_later_passive_reply_waits_for_an_earlier_answer_still_in_the_outbox(
    store: ConversationStore,
) -> None:
    hold = T0 + timedelta(seconds=5)
    (_a1,) = await put(store, A, "answer to m1", message_id="m1", not_before=hold)
    (a2,) = await put(store, A, "answer to m2", message_id="m2", not_before=hold)
    assert await store.claim_passive([a2]) == []
    # a proactive push (no inbound) scheduled later does not hold answers back
    (b1,) = await put(store, B, "reminder", not_before=T0 + timedelta(days=1))
    (b2,) = await put(store, B, "answer", message_id="m3")
    assert [m.outbox_id for m in await store.claim_passive([b2])] == [b2]
    assert b1 < b2


async def test_release_passive_makes_held_replies_due_now_and_only_those(store: ConversationStore) -> None:
    hold = T0 + timedelta(seconds=5)
    a1, a2 = await put(store, A, "a1", "a2", message_id="m1", not_before=hold)
    assert await store.claim_due(T0, limit=10, lease=LEASE) == []
    assert await store.release_passive([a1, a2], T0) == 2
    assert await store.release_passive([a1, a2], T0) == 0
    assert [m.outbox_id for m in await store.claim_due(T0, limit=10, lease=LEASE)] == [a1]


async def test_leases_of_a_stopped_process_are_reclaimed_at_start(store: ConversationStore) -> None:
    a1, a2 = await put(store, A, "a1", "a2")
    (b1,) = await put(store, B, "b1")
    assert {m.outbox_id for m in await store.claim_due(T0, limit=10, lease=LEASE)} == {a1, b1}
    await store.mark_sent_many([b1], T0)
    # the process dies here, a1 marked "sending" with a lease of a minute; the next process on
    # this database is a new store (on PostgreSQL, a new worker id)
    await store.close()
    restarted = type(store)(store.engine)  # type: ignore[call-arg,attr-defined]
    try:
        assert await restarted.reclaim_leases() == 1
        again = await restarted.claim_due(T0 + timedelta(seconds=1), limit=10, lease=LEASE)
        assert [(m.outbox_id, m.attempt) for m in again] == [(a1, 2)]
        assert a2 > a1
    finally:
        await restarted.close()


async def test_a_reply_claimed_after_a_restart_is_the_one_committed(store: ConversationStore) -> None:
    # The SQLite store hands out the replies it committed itself from memory; a process that
    # did not commit them (a restart) reads them from their rows, and must send the same.
    reply = Reply.text_reply(
        "请核对：张三", options=(Option("1.2.confirm", "确认"), Option("@cancel", "取消"))
    )
    snapshot = await store.load(A, None)
    committed = replace(change(message_id="m1"), replies=[QueuedReply(reply, Origin.STAFF)])
    (message,) = await store.commit(A, snapshot, committed, T0)
    await store.close()
    restarted = type(store)(store.engine)  # type: ignore[call-arg,attr-defined]
    try:
        (claimed,) = await restarted.claim_due(T0, limit=10, lease=LEASE)
        assert claimed == replace(message, attempt=1)
        assert (claimed.reply, claimed.origin, claimed.in_reply_to) == (reply, Origin.STAFF, "m1")
    finally:
        await restarted.close()


async def test_owners_are_read_as_they_are_now_for_a_claimed_batch_and_any_other_keys(
    store: ConversationStore,
) -> None:
    await put(store, A, "a1")
    await put(store, B, "b1")
    assert {m.key for m in await store.claim_due(T0, limit=10, lease=LEASE)} == {A, B}
    assert await store.owners_of([A, B]) == {A: "bot", B: "bot"}
    # staff take B over after the claim: the dispatcher's check just before sending sees it
    await store.commit(B, await store.load(B, None), change(owner="staff:alice"), T0)
    assert await store.owners_of([A, B]) == {A: "bot", B: "staff:alice"}
    assert await store.owners_of([B]) == {B: "staff:alice"}
    # keys the last claim did not take (C was never stored): the same answers
    assert await store.owners_of([C, B]) == {C: "bot", B: "staff:alice"}
    assert await store.owners_of([]) == {}


async def test_undelivered_lists_queued_and_held_messages(store: ConversationStore) -> None:
    a1, a2, a3 = await put(store, A, "a1", "a2", "a3")
    await store.claim_due(T0, limit=10, lease=LEASE)
    await store.mark_sent_many([a1], T0)
    await store.claim_due(T0, limit=10, lease=LEASE)
    await store.mark_final(a2, OutboxStatus.HELD, "owner is staff:alice")
    found = await store.undelivered(A, 10)
    assert [(m.outbox_id, label) for m, label in found] == [(a2, "held"), (a3, "queued")]
    assert await store.undelivered(B, 10) == []


async def test_table_writes_join_the_store_and_report_row_counts(store: ConversationStore) -> None:
    from bot.engine.store import insert_for
    from bot.engine.tables import event_cursor

    # Direct table writes, allowed here: this is the store's own contract for raw writes.

    dialect = store.engine.dialect.name  # type: ignore[attr-defined]
    insert = insert_for(dialect)(event_cursor).values(name="feed", position=7, updated_at=T0)
    assert await store.write(insert.on_conflict_do_nothing()) == 1
    assert await store.write(insert.on_conflict_do_nothing()) == 0
    assert await store.cursor("feed") == 7
    later = T0 + timedelta(hours=1)
    moved = event_cursor.update().where(event_cursor.c.name == "feed").values(position=9, updated_at=later)
    assert await store.write(moved) == 1
    assert await store.cursor("feed") == 9
    await store.set_cursor("feed", 8, later)  # never back: the written value is comparable
    assert await store.cursor("feed") == 9


async def test_a_prepared_write_takes_each_calls_values(store: ConversationStore) -> None:
    """The message path keeps its statements and passes values per call; a store that
    compiles them once must not reuse one call's values for the next."""
    import sqlalchemy as sa

    from bot.engine.store import insert_for
    from bot.engine.tables import event_cursor

    dialect = store.engine.dialect.name  # type: ignore[attr-defined]
    prepared = (
        insert_for(dialect)(event_cursor)
        .values(name=sa.bindparam("name"), position=sa.bindparam("position"), updated_at=sa.bindparam("at"))
        .on_conflict_do_nothing()
    )
    assert await store.write(prepared, {"name": "one", "position": 3, "at": T0}) == 1
    assert await store.write(prepared, {"name": "two", "position": 5, "at": T0}) == 1
    assert await store.write(prepared, {"name": "one", "position": 4, "at": T0}) == 0
    assert (await store.cursor("one"), await store.cursor("two")) == (3, 5)
    moving = (
        event_cursor.update()
        .where(event_cursor.c.name == sa.bindparam("target"))
        .values(position=sa.bindparam("position"))
    )
    assert await store.write(moving, {"target": "two", "position": 11}) == 1
    assert await store.write(moving, {"target": "none", "position": 12}) == 0
    assert (await store.cursor("one"), await store.cursor("two")) == (3, 11)


async def test_a_prepared_existence_check_sees_each_calls_values_and_the_latest_writes(
    store: ConversationStore,
) -> None:
    import sqlalchemy as sa

    from bot.engine.tables import event_cursor

    named = sa.select(event_cursor.c.name).where(event_cursor.c.name == sa.bindparam("name"))
    assert await store.exists(named, {"name": "feed"}) is False
    await store.set_cursor("feed", 1, T0)
    assert await store.exists(named, {"name": "feed"}) is True
    assert await store.exists(named, {"name": "other"}) is False
    writes_before = store.write_transactions
    assert await store.exists(named, {"name": "feed"}) is True
    assert store.write_transactions == writes_before  # a read is no write


async def test_replies_held_or_scheduled_for_later_do_not_starve_due_ones(store: ConversationStore) -> None:
    later = T0 + timedelta(hours=1)
    for n in range(60):  # more than any claiming window: held replies of 60 other users
        await put(store, ConversationKey("wechat", "oa1", f"held-{n}"), "held", not_before=later)
    (due,) = await put(store, A, "due now")
    claimed = await store.claim_due(T0, limit=5, lease=LEASE)
    assert [m.outbox_id for m in claimed] == [due]
    # and a conversation's due reply still waits behind its own older reply that is not due
    (b1,) = await put(store, B, "first, later", not_before=later)
    (b2,) = await put(store, B, "second, now")
    assert await store.claim_due(T0, limit=5, lease=LEASE) == []
    at_last = {m.outbox_id for m in await store.claim_due(later, limit=100, lease=LEASE)}
    assert b1 in at_last
    assert b2 not in at_last  # one at a time per conversation, the older first
    assert len(at_last) == 62  # the 60 held replies, b1, and "due" again (its lease ran out)


# ---- writes that go with the handling, and replies carried in the response ------------------


def _cursor_write(store: ConversationStore, name: str, position: int) -> SideWrite:
    import sqlalchemy as sa

    from bot.engine.store import insert_for
    from bot.engine.tables import event_cursor

    dialect = store.engine.dialect.name  # type: ignore[attr-defined]
    prepared = (
        insert_for(dialect)(event_cursor)
        .values(name=sa.bindparam("name"), position=sa.bindparam("position"), updated_at=sa.bindparam("at"))
        .on_conflict_do_nothing()
    )
    return SideWrite(prepared, {"name": name, "position": position, "at": T0})


async def test_side_writes_commit_in_the_handling_transaction_and_not_without_it(
    store: ConversationStore,
) -> None:
    first = await store.load(A, None)
    with_it = replace(change("hello"), side_writes=[_cursor_write(store, "nonce-1", 1)])
    await store.commit(A, first, with_it, T0)
    assert await store.cursor("nonce-1") == 1
    # a refused commit (a stale version) writes none of its side writes either
    stale = replace(change("again"), side_writes=[_cursor_write(store, "nonce-2", 2)])
    with pytest.raises(VersionConflict):
        await store.commit(A, first, stale, T0)
    assert await store.cursor("nonce-2") == 0


def _in_band(store: ConversationStore, window: AnswerWindow, count: int) -> InBandCommit:
    return InBandCommit(window, InBandPlan(count, _cursor_write(store, "answer-record", 1)))


async def test_an_open_window_carries_the_leading_replies_and_records_the_answer(
    store: ConversationStore,
) -> None:
    deadline = T0 + timedelta(seconds=4.5)
    window = AnswerWindow(deadline, FixedClock(deadline - timedelta(milliseconds=1)))
    offer = replace(change("one", "two", "three", message_id="m1"), in_band=_in_band(store, window, 2))
    messages = await store.commit(C, await store.load(C, "m1"), offer, T0)
    assert window.decided
    assert window.carried == (messages[0].outbox_id, messages[1].outbox_id)
    assert await store.cursor("answer-record") == 1
    # the dispatcher gets the third only, and never a carried one
    due = await store.claim_due(T0 + timedelta(seconds=10), limit=10, lease=LEASE)
    assert [m.outbox_id for m in due] == [messages[2].outbox_id]
    assert not window.close()  # the webhook abides by the commit's claim


async def test_a_commit_at_or_after_the_deadline_carries_nothing_and_records_nothing(
    store: ConversationStore,
) -> None:
    deadline = T0 + timedelta(seconds=4.5)
    window = AnswerWindow(deadline, FixedClock(deadline))
    offer = replace(change("one", message_id="m1"), in_band=_in_band(store, window, 1))
    messages = await store.commit(C, await store.load(C, "m1"), offer, T0)
    assert (window.decided, window.carried) == (True, ())
    assert await store.cursor("answer-record") == 0
    assert window.close()  # nobody claimed it: the webhook answers "success"
    due = await store.claim_due(T0 + timedelta(seconds=10), limit=10, lease=LEASE)
    assert [m.outbox_id for m in due] == [messages[0].outbox_id]


async def test_a_window_the_webhook_closed_first_is_never_claimed_by_a_later_commit(
    store: ConversationStore,
) -> None:
    deadline = T0 + timedelta(seconds=4.5)
    window = AnswerWindow(deadline, FixedClock(T0))
    assert window.close()
    offer = replace(change("one", message_id="m1"), in_band=_in_band(store, window, 1))
    messages = await store.commit(C, await store.load(C, "m1"), offer, T0)
    assert window.carried == ()
    due = await store.claim_due(T0 + timedelta(seconds=10), limit=10, lease=LEASE)
    assert [m.outbox_id for m in due] == [messages[0].outbox_id]


async def test_a_carried_reply_never_overtakes_an_earlier_answer_still_in_the_outbox(
    store: ConversationStore,
) -> None:
    await put(store, C, "answer to m1", message_id="m1")  # not yet sent
    deadline = T0 + timedelta(seconds=4.5)
    window = AnswerWindow(deadline, FixedClock(T0))
    offer = replace(change("answer to m2", message_id="m2"), in_band=_in_band(store, window, 1))
    await store.commit(C, await store.load(C, "m2"), offer, T0)
    assert (window.decided, window.carried) == (True, ())
    assert await store.cursor("answer-record") == 0
