"""Opt-in e-mailed status notices: an account that gave an address and opted in is mailed when
its orders are paid, approved or rejected (with the reason), made, shipped (with the waybill)
and invoiced.

The preference is the account's (``NoticePreference``), chosen in the chat or through
``PUT /v1/me/notices``, and can only be turned on while the platform has SMTP settings. A
notice is queued in the transaction of the change it reports (``queue_order_notice`` from
``orders.transition``, ``queue_invoice_notice`` from the invoice issue) and only for an account
that opted in, then rendered and sent after the commit by the mail outbox (``mail_outbox``):
what a rolled-back change would have said is never sent, and an opt-out before delivery wins.
Texts are in ``locales/<language>/notices.toml``, zh-CN first, in the language chosen at opt-in.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform import mail_outbox
from seal_platform.db import Base
from seal_platform.errors import InvalidInput, RuleViolation
from seal_platform.mail_outbox import mail_enabled

if TYPE_CHECKING:
    from seal_platform.services import PlatformServices

NOTICE_MAIL = "notice"
LANGUAGES = ("zh-CN", "en")
# The order statuses that are mailed (``order.<status>``), besides the issued invoice.
NOTICE_STATUSES = frozenset({"paid", "approved", "rejected", "in_production", "shipped"})
INVOICED = "invoiced"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_LOCALES = Path(__file__).parent / "locales"


class NoticePreference(Base):
    __tablename__ = "notice_preferences"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


async def preference(session: AsyncSession, account_id: str) -> NoticePreference | None:
    return await session.get(NoticePreference, account_id)


async def set_preference(
    session: AsyncSession,
    services: PlatformServices,
    account_id: str,
    *,
    enabled: bool,
    email: str | None,
    language: str | None = None,
) -> NoticePreference:
    """Opt in (an address is needed, and mail must be set up) or out. The address and language
    are kept when omitted, so opting in again may leave them out."""
    if language is not None and language not in LANGUAGES:
        raise InvalidInput("unsupported language", code="notice_language", languages=list(LANGUAGES))
    row = await preference(session, account_id)
    address = (email or "").strip() or (row.email if row is not None else "")
    language = language or (row.language if row is not None else LANGUAGES[0])
    if enabled:
        if not mail_enabled(services.settings):
            raise RuleViolation("邮件通知暂未开通", code="notice_mail_unavailable")
        if not address:
            raise InvalidInput("请填写接收通知的邮箱", code="notice_email_required")
    if row is None:
        row = NoticePreference(account_id=account_id)
        session.add(row)
    row.email, row.language, row.enabled = address, language, enabled
    row.updated_at = services.clock.now()
    await session.flush()
    return row


async def _opted_in(session: AsyncSession, account_id: str) -> NoticePreference | None:
    row = await preference(session, account_id)
    return row if row is not None and row.enabled and row.email else None


async def queue_order_notice(
    session: AsyncSession,
    *,
    account_id: str,
    status: str,
    order_code: str,
    order_type: str,
    amount_fen: int,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Queue the notice of an order's new status, if it is one that is mailed and the account
    opted in (one primary-key read for every other account)."""
    if status not in NOTICE_STATUSES or await _opted_in(session, account_id) is None:
        return
    payload = {
        "status": status,
        "order": order_code,
        "order_type": order_type,
        "amount_fen": amount_fen,
        **{key: str(data[key]) for key in ("reason", "waybill", "tracking_url") if data.get(key)},
    }
    mail_outbox.queue(session, kind=NOTICE_MAIL, payload=payload, now=now, account_id=account_id)


async def queue_invoice_notice(
    session: AsyncSession,
    *,
    account_id: str,
    order_code: str,
    number: str,
    mailed_to: str | None,
    now: datetime,
) -> None:
    """Queue the "invoice issued" notice, unless the invoice itself was mailed to that address."""
    opted = await _opted_in(session, account_id)
    if opted is None or (mailed_to or "").lower() == opted.email.lower():
        return
    payload = {"status": INVOICED, "order": order_code, "number": number}
    mail_outbox.queue(session, kind=NOTICE_MAIL, payload=payload, now=now, account_id=account_id)


@cache
def catalog(language: str) -> dict[str, Any]:
    with (_LOCALES / language / "notices.toml").open("rb") as fh:
        return tomllib.load(fh)


def notice_message(
    services: PlatformServices, to: str, language: str, payload: dict[str, Any]
) -> EmailMessage:
    settings = services.settings
    texts = catalog(language if language in LANGUAGES else LANGUAGES[0])
    status = str(payload["status"])
    service = settings.operator_service_name
    values = {
        "service": service,
        "order": payload.get("order", ""),
        "type": texts["types"].get(str(payload.get("order_type", "")), ""),
        "amount": f"{Decimal(int(payload.get('amount_fen', 0))) / 100:.2f}",
        "reason": payload.get("reason", ""),
        "waybill": payload.get("waybill", ""),
        "tracking_url": payload.get("tracking_url", ""),
        "number": payload.get("number", ""),
    }
    message = EmailMessage()
    message["Subject"] = texts["subject"].format(status=texts["status"][status], **values)
    message["From"] = formataddr((service, settings.smtp_from))
    message["To"] = to
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rsplit("@", 1)[-1])
    lines = [texts["greeting"], "", texts["body"][status].format(**values), ""]
    if settings.operator_hotline:
        lines.append(texts["hotline"].format(hotline=settings.operator_hotline))
    lines += [texts["footer"].format(service=service), "", settings.operator_company or service]
    message.set_content("\n".join(lines))
    message["Content-Language"] = language  # after set_content, which drops Content-* headers
    return message


async def render_notice(services: PlatformServices, mail: mail_outbox.QueuedMail) -> EmailMessage | None:
    """The outbox renderer of notices: to the address opted in now (``None`` once opted out)."""
    if not mail_enabled(services.settings) or mail.account_id is None:
        return None
    async with services.db.session() as session:
        opted = await _opted_in(session, mail.account_id)
        if opted is None:
            return None
        to, language = opted.email, opted.language
    return notice_message(services, to, language, mail.payload)
