"""Service endpoints the bot's scheduler calls: seals nearing expiry, their current state, and
the unpaid-order sweep.

Only the service credential is needed (no account token): the scheduler acts for the platform's
own duties, not for one applicant.

``GET /v1/service/expiring-seals`` pages through live seals whose ``valid_to`` falls in
``(since, until]`` with a keyset cursor on ``(valid_to, id)``. The partial index below holds only
live seals and is ordered like the page, so a page reads exactly the rows it returns: the cost of
a planning pass grows with the number of seals that are due, not with the size of the table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel, Field

from seal_platform.auth import ServicesDep, service_router
from seal_platform.errors import InvalidInput
from seal_platform.payments.reconcile import reconcile_unpaid
from seal_platform.seals import Seal, SealStatus, as_utc

router = service_router(prefix="/v1/service", tags=["service"])

# Seals that still expire (a cancelled seal never does; one in production has no validity yet).
LIVE_STATUSES = (SealStatus.ACTIVE.value, SealStatus.LOCKED.value, SealStatus.EXPIRED.value)

# The planning index: (valid_to, id) over live seals only. The alembic migration must create it
# too (it joins Base.metadata when this module is imported).
EXPIRY_INDEX = sa.Index(
    "ix_seals_live_valid_to_id",
    Seal.valid_to,
    Seal.id,
    postgresql_where=Seal.status.in_(LIVE_STATUSES),
    sqlite_where=Seal.status.in_(LIVE_STATUSES),
)

MAX_PAGE = 1000
# How far back expired seals are still listed when the caller gives no ``since``.
DEFAULT_LOOKBACK = timedelta(days=1)


class ExpiringSeal(BaseModel):
    seal_id: str
    account_id: str
    kind: str
    name: str
    status: str
    valid_to: datetime


class ExpiringSealsPage(BaseModel):
    seals: list[ExpiringSeal]
    # Pass as ``after`` for the next page; None when this page was the last.
    next_after: str | None


class SealStatesIn(BaseModel):
    seal_ids: list[str] = Field(max_length=MAX_PAGE)


class SealState(BaseModel):
    seal_id: str
    status: str
    valid_to: datetime | None


class ReconcileOut(BaseModel):
    paid: list[str]
    expired: list[str]
    failed: list[str]


def encode_cursor(valid_to: datetime, seal_id: str) -> str:
    return f"{as_utc(valid_to).isoformat()}|{seal_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    stamp, sep, seal_id = cursor.partition("|")
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise InvalidInput("malformed cursor", code="invalid_cursor") from exc
    if not sep or not seal_id or at.tzinfo is None:
        raise InvalidInput("malformed cursor", code="invalid_cursor")
    return at, seal_id


def expiring_query(
    since: datetime, until: datetime, after: tuple[datetime, str] | None, limit: int
) -> sa.Select[Seal]:
    """The page query; the benchmark prints its plan, so it is built in one place."""
    query = sa.select(Seal).where(
        Seal.status.in_(LIVE_STATUSES),
        Seal.valid_to > since,
        Seal.valid_to <= until,
    )
    if after is not None:
        # Typed literals: the UTC conversion of the column type must apply to the cursor too.
        bound = sa.tuple_(sa.literal(after[0], Seal.valid_to.type), sa.literal(after[1], Seal.id.type))
        query = query.where(sa.tuple_(Seal.valid_to, Seal.id) > bound)
    return query.order_by(Seal.valid_to, Seal.id).limit(limit)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone offset", code="naive_datetime", field=name)
    return value


@router.get("/expiring-seals", response_model=ExpiringSealsPage)
async def expiring_seals(
    services: ServicesDep,
    until: datetime,
    since: datetime | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
) -> ExpiringSealsPage:
    until = _aware(until, "until")
    since = _aware(since, "since") if since is not None else services.clock.now() - DEFAULT_LOOKBACK
    cursor = decode_cursor(after) if after else None
    async with services.db.session() as session:
        rows = list(await session.scalars(expiring_query(since, until, cursor, limit)))
    seals = [
        ExpiringSeal(
            seal_id=s.id,
            account_id=s.account_id,
            kind=s.kind,
            name=s.holder_name,
            status=s.status,
            valid_to=as_utc(s.valid_to),
        )
        for s in rows
        if s.valid_to is not None  # the WHERE excludes NULL; this tells the type checker
    ]
    last = seals[-1] if len(seals) == limit else None
    return ExpiringSealsPage(
        seals=seals, next_after=encode_cursor(last.valid_to, last.seal_id) if last else None
    )


@router.post("/seal-states", response_model=list[SealState])
async def seal_states(services: ServicesDep, body: SealStatesIn) -> list[SealState]:
    """The current status and validity of the given seals (unknown ids are left out): the
    scheduler checks a reminder still applies (not renewed, not cancelled) just before sending."""
    if not body.seal_ids:
        return []
    async with services.db.session() as session:
        rows = await session.scalars(sa.select(Seal).where(Seal.id.in_(set(body.seal_ids))))
        return [
            SealState(seal_id=s.id, status=s.status, valid_to=as_utc(s.valid_to) if s.valid_to else None)
            for s in rows
        ]


@router.post("/reconcile-payments", response_model=ReconcileOut)
async def reconcile_payments(services: ServicesDep) -> ReconcileOut:
    """Orders past their payment deadline: paid ones applied, the rest expired (which publishes
    ``order.expired`` to the bot's event feed, so the applicant is told)."""
    report = await reconcile_unpaid(services)
    return ReconcileOut(paid=report.paid, expired=report.expired, failed=report.failed)
