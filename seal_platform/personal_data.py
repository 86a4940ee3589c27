"""The user's rights over what the platform holds about them (PIPL): a copy, and deletion.

``export_archive`` is everything held about one account, as a ZIP of ``data.json`` (the rows,
clear: it is the user's own copy) and ``documents/`` (their scans and files). ``delete_account``
erases the account's personal data and keeps, pseudonymised, only what the law requires the
operator to keep: orders and their amounts, issued invoices (title and tax number, as printed),
and the certificates of seals that were issued. It is refused while a seal is live or an order
is open (``deletion_blockers``): a live seal's certificate names the person and must first be
cancelled or run out; an open order is money and work in progress.

Both need an SMS code of their own purpose to the account's phone; both are audited.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import zipfile
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from seal_platform import events
from seal_platform.accounts import Account, AccountToken, LoginThrottle, RealnameStatus, account_id_number
from seal_platform.companies import LEGAL_REP_ID_CONTEXT, Company, legal_rep_id
from seal_platform.documents import Document, DocumentKind
from seal_platform.errors import Conflict
from seal_platform.invoices import InvoiceRecord
from seal_platform.orders import OPEN_STATUSES, Order
from seal_platform.seals import Seal, SealKind, SealStatus
from seal_platform.services import PlatformServices
from seal_platform.sms import SmsCode
from seal_platform.staff_actions import record_audit

LIVE_SEAL_STATUSES = frozenset({SealStatus.IN_PRODUCTION, SealStatus.ACTIVE, SealStatus.LOCKED})
# Files the tax law requires the operator to keep with the invoice; every other file goes.
KEPT_DOCUMENT_KINDS = frozenset({DocumentKind.INVOICE_PDF})
DELETED_NAME = "已注销用户"


@dataclass(frozen=True)
class Blocker:
    """Something that must end before the account can be deleted."""

    kind: str  # "seal" or "order"
    id: str
    type: str  # seal kind or order type
    status: str


@dataclass(frozen=True)
class DeletionPreview:
    blockers: list[Blocker]
    kept_orders: int
    kept_invoices: int
    kept_certificates: int
    documents: int


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def _rows(session: AsyncSession, model: Any, *where: Any) -> list[Any]:
    return list((await session.execute(select(model).where(*where))).scalars())


async def personal_data(
    session: AsyncSession, services: PlatformServices, account: Account, documents: list[Document]
) -> dict[str, Any]:
    """Every row held about ``account`` (whose ``documents`` the caller read), clear
    (decrypted), as JSON-ready data."""
    companies = await _rows(session, Company, Company.account_id == account.id)
    orders = await _rows(session, Order, Order.account_id == account.id)
    seals = await _rows(session, Seal, Seal.account_id == account.id)
    invoices = await _rows(session, InvoiceRecord, InvoiceRecord.account_id == account.id)
    codes = await _rows(session, SmsCode, SmsCode.phone == account.phone)
    sessions = await _rows(session, AccountToken, AccountToken.account_id == account.id)
    return {
        "exported_at": services.clock.now().isoformat(),
        "account": {
            "id": account.id,
            "phone": account.phone,
            "created_at": _iso(account.created_at),
            "realname_status": account.realname_status,
            "real_name": account.real_name,
            "id_number": account_id_number(services, account),
            "realname_verified_at": _iso(account.realname_verified_at),
        },
        "companies": [
            {
                "name": c.name,
                "uscc": c.uscc,
                "legal_rep_name": c.legal_rep_name,
                "legal_rep_id": legal_rep_id(services, c),
                "created_at": _iso(c.created_at),
            }
            for c in companies
        ],
        "orders": [
            {
                "id": o.id,
                "type": o.type,
                "status": o.status,
                "amount_fen": o.amount_fen,
                "mailing_address": o.mailing_address,
                "documents": o.documents,
                "waybill": o.waybill,
                "created_at": _iso(o.created_at),
            }
            for o in orders
        ],
        "seals": [
            {
                "kind": s.kind,
                "status": s.status,
                "holder_name": s.holder_name,
                "seal_code": s.seal_code,
                "certificate_serial": s.certificate_serial,
                "valid_from": _iso(s.valid_from),
                "valid_to": _iso(s.valid_to),
            }
            for s in seals
        ],
        "invoices": [
            {
                "order_id": i.order_id,
                "title": i.title,
                "tax_number": i.tax_number,
                "email": i.email,
                "amount_fen": i.amount_fen,
                "status": i.status,
                "invoice_number": i.invoice_number,
                "requested_at": _iso(i.requested_at),
            }
            for i in invoices
        ],
        "documents": [
            {
                "id": d.id,
                "kind": d.kind,
                "filename": d.filename,
                "content_type": d.content_type,
                "size": d.size,
                "created_at": _iso(d.created_at),
                "file": _archive_name(d),
            }
            for d in documents
        ],
        "sms_codes": [{"purpose": c.purpose, "sent_at": _iso(c.created_at)} for c in codes],
        "logins": [
            {"created_at": _iso(t.created_at), "expires_at": _iso(t.expires_at), "ended": t.revoked}
            for t in sessions
        ],
    }


def _archive_name(document: Document) -> str:
    return f"documents/{document.id}-{document.filename}"


async def export_archive(session: AsyncSession, services: PlatformServices, account: Account) -> bytes:
    """The ZIP the user downloads: ``data.json`` and every file of theirs."""
    documents = await _rows(session, Document, Document.account_id == account.id)
    data = await personal_data(session, services, account, documents)
    files = [(_archive_name(d), await services.blob_store.get(d.sha256)) for d in documents]

    def pack() -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("data.json", json.dumps(data, ensure_ascii=False, indent=2))
            for name, content in files:
                archive.writestr(name, content)
        return out.getvalue()

    packed = await asyncio.to_thread(pack)
    record_audit(
        session,
        actor=f"account:{account.id}",
        action="personal_data.exported",
        object_type="account",
        object_id=account.id,
        before=None,
        after={"documents": len(files)},
        at=services.clock.now(),
    )
    return packed


def _blockers(seals: list[Seal], orders: list[Order]) -> list[Blocker]:
    blockers = [Blocker("seal", s.id, s.kind, s.status) for s in seals if s.status in LIVE_SEAL_STATUSES]
    blockers += [Blocker("order", o.id, o.type, o.status) for o in orders if o.status in OPEN_STATUSES]
    return blockers


def _kept_orders(orders: list[Order]) -> int:
    """Paid orders: kept (pseudonymised) as the law requires."""
    return sum(1 for o in orders if o.amount_fen > 0)


async def deletion_preview(session: AsyncSession, account: Account) -> DeletionPreview:
    seals = await _rows(session, Seal, Seal.account_id == account.id)
    orders = await _rows(session, Order, Order.account_id == account.id)
    invoices = await _rows(session, InvoiceRecord, InvoiceRecord.account_id == account.id)
    documents = await _rows(session, Document, Document.account_id == account.id)
    return DeletionPreview(
        blockers=_blockers(seals, orders),
        kept_orders=_kept_orders(orders),
        kept_invoices=len(invoices),
        kept_certificates=sum(1 for s in seals if s.certificate_serial),
        documents=sum(1 for d in documents if d.kind not in KEPT_DOCUMENT_KINDS),
    )


def refuse_if_blocked(blockers: list[Blocker]) -> None:
    if blockers:
        raise Conflict(
            "账号下还有进行中的订单或有效的印章，暂不能注销",
            code="account_deletion_blocked",
            blockers=[b.__dict__ for b in blockers],
        )


@dataclass(frozen=True)
class Deleted:
    documents: int
    orders_kept: int
    # Blobs no document names any more: removed by ``remove_blobs`` once the rows are committed.
    orphan_blobs: frozenset[str]


async def delete_account(session: AsyncSession, services: PlatformServices, account: Account) -> Deleted:
    """Erase the account's personal data (see the module); the caller verified the SMS code.
    Refused (``account_deletion_blocked``) while a seal is live or an order is open."""
    seals = await _rows(session, Seal, Seal.account_id == account.id)
    orders = await _rows(session, Order, Order.account_id == account.id)
    refuse_if_blocked(_blockers(seals, orders))
    now = services.clock.now()
    phone = account.phone
    documents = [
        d
        for d in await _rows(session, Document, Document.account_id == account.id)
        if d.kind not in KEPT_DOCUMENT_KINDS
    ]
    gone = {d.id for d in documents}
    for order in orders:
        order.mailing_address = None
        order.documents = {role: doc for role, doc in (order.documents or {}).items() if doc not in gone}
    for seal in seals:
        if seal.kind == SealKind.PERSONAL:
            seal.holder_name = DELETED_NAME
        seal.impression_document_id = (
            None if seal.impression_document_id in gone else seal.impression_document_id
        )
        seal.seseal_document_id = None if seal.seseal_document_id in gone else seal.seseal_document_id
    for company in await _rows(session, Company, Company.account_id == account.id):
        company.legal_rep_name = DELETED_NAME
        company.legal_rep_id_encrypted = services.field_cipher.encrypt("", context=LEGAL_REP_ID_CONTEXT)
        company.legal_rep_id_masked = ""
    await session.execute(
        update(InvoiceRecord).where(InvoiceRecord.account_id == account.id).values(email="")
    )
    digests = {d.sha256 for d in documents}
    await session.execute(delete(Document).where(Document.id.in_(gone)))
    await session.execute(delete(SmsCode).where(SmsCode.phone == phone))
    await session.execute(delete(LoginThrottle).where(LoginThrottle.phone == phone))
    await session.execute(
        update(AccountToken).where(AccountToken.account_id == account.id).values(revoked=True)
    )
    # The row stays (orders and invoices point at it) under a pseudonym no phone can match.
    account.phone = "d" + secrets.token_hex(5)
    account.password_hash = "!deleted"
    account.real_name = None
    account.id_number_enc = None
    account.id_number_masked = None
    account.realname_status = RealnameStatus.NONE.value
    account.realname_verified_at = None
    await session.flush()
    # A scan uploaded by two accounts is one blob: it goes when no document names it any more.
    still_used = set(
        (await session.execute(select(Document.sha256).where(Document.sha256.in_(digests)))).scalars()
    )
    done = Deleted(
        documents=len(documents),
        orders_kept=_kept_orders(orders),
        orphan_blobs=frozenset(digests - still_used),
    )
    record_audit(
        session,
        actor=f"account:{account.id}",
        action="account.deleted",
        object_type="account",
        object_id=account.id,
        before=None,
        after={"documents": done.documents, "orders_kept": done.orders_kept},
        at=now,
    )
    events.publish(session, account.id, "account.deleted", {})
    return done


async def remove_blobs(services: PlatformServices, digests: frozenset[str]) -> int:
    """Delete blobs after the transaction that dropped their last document committed (a failed
    commit then leaves rows that still open)."""
    removed = 0
    for digest in sorted(digests):
        removed += int(await services.blob_store.delete(digest))
    return removed
