"""Conversation housekeeping: stale flows put aside, old dedupe records deleted, and inactive
conversations and old transcripts deleted (retention).

A flow nobody touched for a day is paused the way the menu pauses it (``ConversationState.paused``,
answers kept): the user's next message then gets the menu with "continue where I left off"
instead of being taken as the answer to a question asked long ago. Nothing is said to the user,
so there is nothing to send at night or outside a channel's window.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.engine.context import Ctx
from bot.engine.messages import ConversationKey
from bot.engine.runtime import Engine
from bot.engine.state import Owner
from bot.engine.store import OutboxStatus
from bot.engine.tables import conversations, inbound_receipts, outbox

log = logging.getLogger("sealbot.scheduler.housekeeping")


async def pause_stale_conversations(
    engine: Engine, db: AsyncEngine, now: datetime, *, idle: timedelta, limit: int = 200
) -> int:
    """Pause flows idle for ``idle`` that wait for the user (not for an external event, whose
    own timeout the engine fires); returns how many were paused."""
    cutoff = now - idle
    last_touched = sa.func.coalesce(conversations.c.last_inbound_at, conversations.c.updated_at)
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    conversations.c.channel,
                    conversations.c.account,
                    conversations.c.user_id,
                    conversations.c.state,
                )
                .where(
                    conversations.c.flow.is_not(None),
                    conversations.c.wait_deadline.is_(None),
                    conversations.c.owner == Owner.BOT,
                    last_touched < cutoff,
                    conversations.c.updated_at < cutoff,
                )
                .order_by(conversations.c.updated_at)
                .limit(limit)
            )
        ).all()
    paused = 0
    for row in rows:
        run = (row.state or {}).get("run") or {}
        run_id, step = run.get("run_id"), run.get("step")
        if run_id is None or step is None:
            continue
        key = ConversationKey(row.channel, row.account, row.user_id)
        done = await _pause_if_unchanged(engine, key, run_id, step)
        if done:
            paused += 1
            log.info("paused stale flow %s on %s", run.get("flow"), key)
    return paused


async def _pause_if_unchanged(engine: Engine, key: ConversationKey, run_id: int, step: str) -> bool:
    paused = False

    async def put_aside(ctx: Ctx) -> None:
        nonlocal paused
        current = ctx.state.run
        # Re-checked under the conversation's lock: an answer since the query keeps the flow.
        if current is None or current.run_id != run_id or current.step != step:
            return
        for stacked in ctx.state.stack:
            ctx.state.put_aside(stacked, ctx.now, keep_existing=True)
        ctx.state.put_aside(current, ctx.now)
        ctx.state.stack.clear()
        ctx.state.run = None
        paused = True

    await engine.push(key, put_aside)  # idempotent by the check above: no dedupe id needed
    return paused


async def purge_dedupe_records(db: AsyncEngine, now: datetime, *, older_than: timedelta) -> int:
    """Delete inbound receipts older than ``older_than``: no channel redelivers that late."""
    async with db.begin() as conn:
        result = await conn.execute(
            inbound_receipts.delete().where(inbound_receipts.c.received_at < now - older_than)
        )
    return int(result.rowcount or 0)


async def prune_conversations(db: AsyncEngine, now: datetime, *, older_than: timedelta) -> int:
    """Retention: delivered replies older than ``older_than`` are deleted, and so is every
    conversation nobody wrote in for that long (with its receipts), unless staff own it or it
    waits for an event. Returns how many rows went."""
    cutoff = now - older_than
    last_touched = sa.func.coalesce(conversations.c.last_inbound_at, conversations.c.updated_at)
    idle = sa.select(conversations.c.id).where(
        last_touched < cutoff,
        conversations.c.updated_at < cutoff,
        conversations.c.owner == Owner.BOT,
        conversations.c.wait_deadline.is_(None),
    )
    done = (OutboxStatus.SENT, OutboxStatus.FAILED)
    async with db.begin() as conn:
        ids = list((await conn.execute(idle)).scalars())
        replies = await conn.execute(
            outbox.delete().where(
                sa.or_(
                    sa.and_(outbox.c.status.in_(done), outbox.c.created_at < cutoff),
                    outbox.c.conversation_id.in_(ids),
                )
            )
        )
        receipts = await conn.execute(
            inbound_receipts.delete().where(inbound_receipts.c.conversation_id.in_(ids))
        )
        gone = await conn.execute(conversations.delete().where(conversations.c.id.in_(ids)))
    return int(replies.rowcount or 0) + int(receipts.rowcount or 0) + int(gone.rowcount or 0)
