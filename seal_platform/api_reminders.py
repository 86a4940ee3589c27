"""Service endpoints the bot's scheduler calls: seals nearing expiry, their current state, and
the unpaid-order sweep.

Only the service credential is needed (no account token): the scheduler acts for the platform's
own duties, not for one applicant.

``POST /v1/service/reminder-sms`` texts an expiry reminder to the account's own phone through
the platform's SMS provider, and ``POST /v1/service/reminder-email`` mails one to the account's
own address through the platform's SMTP server (``PLATFORM_SMTP_*``); ``GET
/v1/service/accounts/{id}/contact`` gives the scheduler (and the staff follow-up of an
unreachable reminder) the account's phone: the e-mail address never leaves the platform (it is
read, and decrypted, only to send the reminder e-mail).

``GET /v1/service/expiring-seals`` pages through live seals whose ``valid_to`` falls in
``(since, until]`` with a keyset cursor on ``(valid_to, id)``. The partial index below holds only
live seals and is ordered like the page, so a page reads exactly the rows it returns: the cost of
a planning pass grows with the number of seals that are due, not with the size of the table.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import aiosmtplib
import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from seal_platform.accounts import Account
from seal_platform.auth import ServicesDep, service_router
from seal_platform.companies import Company
from seal_platform.errors import InvalidInput, NotFound, RuleViolation, UpstreamError
from seal_platform.invoices import InvoiceRecord
from seal_platform.mail import mail_enabled, reminder_message, send_mail
from seal_platform.payments.reconcile import reconcile_unpaid
from seal_platform.seals import Seal, SealStatus, as_utc
from seal_platform.sms import SIGNATURE, SmsMessage
from seal_platform.validation import mask_mobile

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
    since: datetime,
    until: datetime,
    after: tuple[datetime, str] | None,
    limit: int,
    changed_since: datetime | None = None,
) -> sa.Select[Seal]:
    """The page query; the benchmark prints its plan, so it is built in one place."""
    query = sa.select(Seal).where(
        Seal.status.in_(LIVE_STATUSES),
        Seal.valid_to > since,
        Seal.valid_to <= until,
    )
    if changed_since is not None:
        # Seals imported or given a new expiry since the scheduler's last pass.
        query = query.where(Seal.updated_at > changed_since)
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
    changed_since: datetime | None = None,
) -> ExpiringSealsPage:
    until = _aware(until, "until")
    since = _aware(since, "since") if since is not None else services.clock.now() - DEFAULT_LOOKBACK
    changed = _aware(changed_since, "changed_since") if changed_since is not None else None
    cursor = decode_cursor(after) if after else None
    async with services.db.session() as session:
        rows = list(await session.scalars(expiring_query(since, until, cursor, limit, changed)))
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


# ---- reaching the account beyond chat ----------------------------------------------------------

REMINDER_TEMPLATE = "seal_expiry_reminder"
# Dates in reminders are the applicant's calendar dates (mainland China).
REMINDER_ZONE = ZoneInfo("Asia/Shanghai")
KIND_LABELS = {"enterprise": "企业印章", "personal": "法人章"}


class ReminderSmsIn(BaseModel):
    account_id: str = Field(max_length=36)
    seal_id: str = Field(max_length=36)
    threshold: int = Field(ge=-1, le=366)


class ReminderSmsOut(BaseModel):
    message_id: str
    phone_masked: str


class ContactOut(BaseModel):
    phone: str
    phone_masked: str


@router.post("/reminder-sms", response_model=ReminderSmsOut)
async def reminder_sms(services: ServicesDep, body: ReminderSmsIn) -> ReminderSmsOut:
    """Text an expiry reminder to the account's own phone (the template ``seal_expiry_reminder``:
    company, seal, expiry date, how to renew). The text is made here from the platform's own
    records, so the bot cannot send arbitrary text to an arbitrary number."""
    async with services.db.session() as session:
        seal, valid_to = await _live_seal(session, body.account_id, body.seal_id)
        account = await session.get(Account, seal.account_id)
        company = await session.get(Company, seal.company_id)
        if account is None or company is None:
            raise NotFound("account not found", account_id=body.account_id)
        phone = account.phone
        date = as_utc(valid_to).astimezone(REMINDER_ZONE).date()
        params = {
            "company": company.name,
            "seal": f"{KIND_LABELS.get(seal.kind, seal.kind)}（编码{seal.seal_code}）",
            "date": f"{date.year}年{date.month}月{date.day}日",
            "renew": "在公众号或网页聊天发送“续期”",
        }
    expired = date < services.clock.now().astimezone(REMINDER_ZONE).date()
    verb = "已于" if expired else "将于"
    text = (
        f"{SIGNATURE}{params['company']}的{params['seal']}{verb}{params['date']}到期。"
        f"续期：{params['renew']}办理。"
    )
    await services.sms_provider.send(
        SmsMessage(phone=phone, text=text, template=REMINDER_TEMPLATE, params=params)
    )
    return ReminderSmsOut(message_id=f"sms-{uuid.uuid4()}", phone_masked=mask_mobile(phone))


async def _live_seal(session: AsyncSession, account_id: str, seal_id: str) -> tuple[Seal, datetime]:
    """The account's own seal that still expires, and when (a reminder about anything else is
    refused)."""
    seal = await session.get(Seal, seal_id)
    if seal is None or seal.account_id != account_id:
        raise NotFound("seal not found", seal_id=seal_id)
    if seal.status not in LIVE_STATUSES or seal.valid_to is None:
        raise RuleViolation("the seal does not expire", code="seal_not_live", seal_id=seal.id)
    return seal, seal.valid_to


async def _account_email(session: AsyncSession, account_id: str) -> str | None:
    """The address the account last gave for an e-invoice: the only one it ever gave us."""
    # The column is encrypted (a fresh nonce each time), so "not empty" is decided here, on
    # the decrypted values, not by comparing ciphertexts in SQL.
    emails = await session.scalars(
        sa.select(InvoiceRecord.email)
        .where(InvoiceRecord.account_id == account_id, InvoiceRecord.email.is_not(None))
        .order_by(InvoiceRecord.requested_at.desc())
    )
    return next((email for email in emails if email), None)


class ReminderEmailIn(BaseModel):
    account_id: str = Field(max_length=36)
    seal_id: str = Field(max_length=36)
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=10_000)


class ReminderEmailOut(BaseModel):
    message_id: str
    email_masked: str


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


@router.post("/reminder-email", response_model=ReminderEmailOut)
async def reminder_email(services: ServicesDep, body: ReminderEmailIn) -> ReminderEmailOut:
    """Mail an expiry reminder to the account's own address. The bot writes the words (in the
    user's language); the platform chooses the address and checks that the seal is the
    account's and still expires, so a reminder can go nowhere else and be about nothing else.

    Refusals: ``mail_not_configured`` and ``no_email`` (409), ``email_refused`` or
    ``smtp_refused`` for a permanent SMTP refusal (409); a 4xx answer or no connection is
    ``smtp_unavailable`` (502, worth trying again)."""
    settings = services.settings
    if not mail_enabled(settings):
        raise RuleViolation("e-mail is not configured on the platform", code="mail_not_configured")
    async with services.db.session() as session:
        await _live_seal(session, body.account_id, body.seal_id)
        email = await _account_email(session, body.account_id)
    if not email:
        raise RuleViolation("the account has no e-mail address", code="no_email")
    message = reminder_message(settings, email, body.subject, body.text)
    try:
        await send_mail(settings, message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise RuleViolation("the e-mail address was refused", code="email_refused") from exc
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code >= 500:
            raise RuleViolation(f"smtp {exc.code}: {exc.message}", code="smtp_refused") from exc
        raise UpstreamError(f"smtp {exc.code}: {exc.message}", code="smtp_unavailable") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise UpstreamError(f"smtp unavailable: {type(exc).__name__}", code="smtp_unavailable") from exc
    return ReminderEmailOut(message_id=str(message["Message-ID"]), email_masked=mask_email(email))


@router.get("/accounts/{account_id}/contact", response_model=ContactOut)
async def account_contact(services: ServicesDep, account_id: str) -> ContactOut:
    async with services.db.session() as session:
        account = await session.get(Account, account_id)
        if account is None:
            raise NotFound("account not found", account_id=account_id)
        return ContactOut(phone=account.phone, phone_masked=mask_mobile(account.phone))
