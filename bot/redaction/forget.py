"""Forgetting a deleted account in the bot's stores (注销账号).

The platform erases the account; the bot still holds, per conversation that was bound to it,
the receipts of what the user sent (redacted, but still theirs: addresses, names, uploads) and
the replies delivered to them (summaries, files). Both go: receipts keep their row (the message
id still deduplicates a redelivery) with the body replaced by a marker, and delivered replies
are deleted. Replies not delivered yet stay, so the confirmation of the deletion still arrives.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.engine.store import OutboxStatus, TableWrites
from bot.engine.tables import conversations, inbound_receipts, outbox

FORGOTTEN = {"text": "[已删除 / deleted]"}
_DONE = (OutboxStatus.SENT, OutboxStatus.FAILED)


async def forget_account(store: TableWrites, platform_account_id: str) -> int:
    bound = sa.select(conversations.c.id).where(conversations.c.platform_account_id == platform_account_id)
    receipts = await store.write(
        sa.update(inbound_receipts)
        .where(inbound_receipts.c.conversation_id.in_(bound))
        .values(body=FORGOTTEN)
    )
    replies = await store.write(
        sa.delete(outbox).where(outbox.c.conversation_id.in_(bound), outbox.c.status.in_(_DONE))
    )
    return receipts + replies
