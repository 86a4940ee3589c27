"""The support audit trail: every ownership change and every staff message."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.support.models import SupportAudit

SYSTEM_ACTOR = "system"  # timeouts
USER_ACTOR = "user"  # the applicant asked for a human


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
    session: AsyncSession, *, conversation: str | None = None, limit: int = 500
) -> list[SupportAudit]:
    query = select(SupportAudit).order_by(SupportAudit.id.desc()).limit(limit)
    if conversation is not None:
        query = query.where(SupportAudit.conversation == conversation)
    return list(reversed((await session.scalars(query)).all()))
