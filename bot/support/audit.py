"""The support audit trail: every ownership change, every staff message, and every staff read
of a conversation (its page with the transcript and the customer's records, the live
transcript, an uploaded file): who, when, which conversation. Reads are shown to admins only
(the inbox's audit page), searchable by staff member, action and conversation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.support.models import SupportAudit

SYSTEM_ACTOR = "system"  # timeouts
USER_ACTOR = "user"  # the applicant asked for a human

VIEW_CONVERSATION = "view_conversation"  # the conversation page: transcript, customer records
READ_TRANSCRIPT = "read_transcript"  # the transcript through the API (not from an open page)
VIEW_MEDIA = "view_media"  # a file the user uploaded (scans)
READ_ACTIONS = (VIEW_CONVERSATION, READ_TRANSCRIPT, VIEW_MEDIA)


def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    conversation: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Added to ``session``: it commits with the change it describes, or not at all."""
    session.add(
        SupportAudit(actor=actor, action=action, conversation=conversation, before=before, after=after, at=at)
    )


async def entries(
    session: AsyncSession, *, conversation: str | None = None, limit: int = 500, reads: bool = True
) -> list[SupportAudit]:
    """The latest ``limit`` entries, oldest first; ``reads=False`` leaves staff reads out."""
    newest = await search(session, conversation=conversation, limit=limit, reads=reads)
    return list(reversed(newest))


async def search(
    session: AsyncSession,
    *,
    actor: str | None = None,
    action: str | None = None,
    conversation: str | None = None,
    limit: int = 500,
    reads: bool = True,
) -> list[SupportAudit]:
    """The newest entries first, narrowed by whichever of the filters is given."""
    query = select(SupportAudit).order_by(SupportAudit.id.desc()).limit(limit)
    if actor:
        query = query.where(SupportAudit.actor == actor)
    if action:
        query = query.where(SupportAudit.action == action)
    if conversation:
        query = query.where(SupportAudit.conversation == conversation)
    if not reads:
        query = query.where(SupportAudit.action.not_in(READ_ACTIONS))
    return list((await session.scalars(query)).all())


async def read_since(session: AsyncSession, *, actor: str, conversation: str, since: datetime) -> bool:
    """Whether ``actor`` has a read of ``conversation`` recorded since ``since``."""
    query = (
        select(SupportAudit.id)
        .where(
            SupportAudit.actor == actor,
            SupportAudit.conversation == conversation,
            SupportAudit.action.in_(READ_ACTIONS),
            SupportAudit.at >= since,
        )
        .limit(1)
    )
    return (await session.scalar(query)) is not None


# The open conversation page refreshes its transcript on every tick: that is the read its
# opening recorded, still on the screen, not a new one. A transcript fetched with no read of
# that conversation by that staff member in this window is recorded as a read of its own.
LIVE_VIEW = timedelta(minutes=10)
