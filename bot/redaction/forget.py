"""Forgetting a deleted account in the bot's stores (注销账号).

The platform erases the account; the bot still holds, per conversation that was bound to it,
the receipts of what the user sent (redacted, but still theirs: addresses, names, uploads),
the replies delivered to them (summaries, files) and the conversation state (the sealed answers
of forms in progress, runs put aside, remembered invoice data, the login). Receipts keep their
row (the message id still deduplicates a redelivery) with the body replaced by a marker,
delivered replies are deleted, and the state of every other bound conversation is replaced by
an empty one. Replies not delivered yet stay, so the confirmation of the deletion still arrives.

The conversation the deletion was asked in (``keep``) is left to the engine, which is writing
it at that moment: its flow logs out and clears it, and a write here would only make that
commit conflict.
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa

from bot.engine.messages import ConversationKey
from bot.engine.state import blank_state
from bot.engine.store import Conversations, OutboxStatus, TableWrites
from bot.engine.tables import conversations, inbound_receipts, outbox

FORGOTTEN = {"text": "[已删除 / deleted]"}
_DONE = (OutboxStatus.SENT, OutboxStatus.FAILED)
# A conversation the engine commits meanwhile is read again; more than this many collisions in
# a row means it is busy, and the next message there finds the login gone anyway.
_ATTEMPTS = 5


async def forget_account(
    store: ForgetStore, platform_account_id: str, keep: ConversationKey | None = None
) -> int:
    bound = sa.select(conversations.c.id).where(conversations.c.platform_account_id == platform_account_id)
    receipts = await store.write(
        sa.update(inbound_receipts)
        .where(inbound_receipts.c.conversation_id.in_(bound))
        .values(body=FORGOTTEN)
    )
    replies = await store.write(
        sa.delete(outbox).where(outbox.c.conversation_id.in_(bound), outbox.c.status.in_(_DONE))
    )
    states = await _forget_states(store, platform_account_id, keep)
    return receipts + replies + states


class ForgetStore(TableWrites, Conversations, Protocol):
    """What forgetting needs of the conversation store: its rows and plain writes."""


async def _forget_states(store: ForgetStore, platform_account_id: str, keep: ConversationKey | None) -> int:
    """Each bound conversation gets an empty state (its language and who holds it kept), under
    a compare-and-set on its version: an engine holding it then fails its commit and reads the
    empty state instead of writing the old answers back."""
    forgotten = 0
    for _ in range(_ATTEMPTS):
        keys = [k for k in await store.keys_for_account(platform_account_id) if k != keep]
        if not keys:
            break
        for key in keys:
            snapshot = await store.load(key, None)
            if snapshot.conversation_id is None:
                continue
            state: dict[str, Any] = snapshot.state or {}
            forgotten += await store.write(
                sa.update(conversations)
                .where(
                    conversations.c.id == snapshot.conversation_id,
                    conversations.c.version == snapshot.version,
                    conversations.c.platform_account_id == platform_account_id,
                )
                .values(
                    version=snapshot.version + 1,
                    state=blank_state(state.get("locale"), str(state.get("owner") or "bot")),
                    platform_account_id=None,
                    flow=None,
                    wait_deadline=None,
                )
            )
    return forgotten
