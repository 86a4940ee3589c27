"""Retention: personal data the platform no longer needs is deleted on schedule.

- Scans (business licence, ID card, impression form) of orders that ended (completed,
  cancelled, expired) ``scan_retention_days`` ago, unless an order still in progress uses the
  same document; the blob goes when no document names it any more.
- SMS code records ``sms_record_retention_days`` after they were sent.
- Login records (session tokens) ``login_record_retention_days`` after they expired.

The bot's scheduler runs it (``POST /v1/service/retention``) with its housekeeping; every run
that deleted something is one entry in the audit log with the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from seal_platform.accounts import AccountToken
from seal_platform.documents import UPLOAD_KINDS, Document
from seal_platform.orders import Order, OrderStatus
from seal_platform.personal_data import remove_blobs
from seal_platform.services import PlatformServices
from seal_platform.sms import SmsCode
from seal_platform.staff_actions import record_audit

ENDED = frozenset({OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.EXPIRED})


@dataclass(frozen=True)
class RetentionReport:
    scans: int
    sms_codes: int
    logins: int

    @property
    def total(self) -> int:
        return self.scans + self.sms_codes + self.logins


async def apply_retention(services: PlatformServices) -> RetentionReport:
    settings = services.settings
    now = services.clock.now()
    scan_cutoff = now - timedelta(days=settings.scan_retention_days)
    async with services.db.session() as session:
        ended = [status.value for status in ENDED]
        open_documents = await session.scalars(select(Order.documents).where(Order.status.not_in(ended)))
        in_use = {doc for documents in open_documents for doc in (documents or {}).values()}
        expired_orders = list(
            await session.scalars(
                select(Order).where(Order.status.in_(ended), Order.updated_at < scan_cutoff)
            )
        )
        candidates = {doc for o in expired_orders for doc in (o.documents or {}).values()} - in_use
        scans = list(
            await session.scalars(
                select(Document).where(Document.id.in_(candidates), Document.kind.in_(list(UPLOAD_KINDS)))
            )
        )
        gone = {d.id for d in scans}
        for order in expired_orders:
            order.documents = {role: doc for role, doc in order.documents.items() if doc not in gone}
        digests = {d.sha256 for d in scans}
        await session.execute(delete(Document).where(Document.id.in_(gone)))
        still_used = set(await session.scalars(select(Document.sha256).where(Document.sha256.in_(digests))))
        sms_cutoff = now - timedelta(days=settings.sms_record_retention_days)
        codes = await session.execute(delete(SmsCode).where(SmsCode.created_at < sms_cutoff))
        login_cutoff = now - timedelta(days=settings.login_record_retention_days)
        logins = await session.execute(delete(AccountToken).where(AccountToken.expires_at < login_cutoff))
        report = RetentionReport(len(scans), int(codes.rowcount or 0), int(logins.rowcount or 0))  # type: ignore[attr-defined]
        if report.total:
            record_audit(
                session,
                actor="system:retention",
                action="retention",
                object_type="platform",
                object_id="retention",
                before=None,
                after={"scans": report.scans, "sms_codes": report.sms_codes, "logins": report.logins},
                at=now,
            )
    await remove_blobs(services, frozenset(digests - still_used))
    return report
