"""The catch-up feed of platform events: ``GET /v1/events?after=<id>&limit=<n>``.

Consumers keep the id of the last event they handled and ask for what came after it. On
databases where concurrent transactions may commit out of id order (PostgreSQL), the newest
rows are held back for ``SETTLE`` so that a lower id committing late is not skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import select

from seal_platform.auth import ServicesDep, service_router
from seal_platform.db import utcnow
from seal_platform.events import PlatformEvent

router = service_router(prefix="/v1", tags=["events"])

MAX_LIMIT = 500
SETTLE = timedelta(seconds=3)


class EventOut(BaseModel):
    id: int
    account_id: str | None
    type: str
    data: dict[str, Any]
    created_at: datetime


class EventPage(BaseModel):
    events: list[EventOut]
    # The cursor for the next call: the last id returned, or ``after`` when nothing was new.
    next_after: int


@router.get("/events", response_model=EventPage)
async def list_events(
    services: ServicesDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> EventPage:
    query = select(PlatformEvent).where(PlatformEvent.id > after).order_by(PlatformEvent.id).limit(limit)
    if not services.db.url.startswith("sqlite"):
        query = query.where(PlatformEvent.created_at <= utcnow() - SETTLE)
    async with services.db.session() as session:
        rows = list(await session.scalars(query))
    events = [
        EventOut(
            id=row.id, account_id=row.account_id, type=row.type, data=row.data, created_at=row.created_at
        )
        for row in rows
    ]
    return EventPage(events=events, next_after=events[-1].id if events else after)
