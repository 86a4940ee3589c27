"""REST endpoints of the user's rights: a copy of everything held (``/v1/me/export``) and the
deletion of the account (``/v1/me/deletion``), each confirmed by an SMS code to the account's
phone (purposes ``export_data`` and ``delete_account``); see ``seal_platform.personal_data``."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel, Field

from seal_platform import personal_data, retention, sms
from seal_platform.accounts import get_account
from seal_platform.auth import AccountDep, ServicesDep, service_router

router = service_router(prefix="/v1", tags=["personal data"])


class CodeConfirm(BaseModel):
    sms_code: str = Field(max_length=16)


class BlockerOut(BaseModel):
    kind: str
    id: str
    type: str
    status: str


class DeletionPreviewOut(BaseModel):
    """What stands in the way, and what would be kept (pseudonymised) as the law requires."""

    blockers: list[BlockerOut]
    kept_orders: int
    kept_invoices: int
    kept_certificates: int
    documents: int


class DeletedOut(BaseModel):
    documents: int
    orders_kept: int


class RetentionOut(BaseModel):
    scans: int
    sms_codes: int
    logins: int


@router.post("/me/export", response_class=Response)
async def export_my_data(body: CodeConfirm, services: ServicesDep, account: AccountDep) -> Response:
    """A ZIP of ``data.json`` and the account's files (``application/zip``)."""
    code_id = await sms.verify_code(
        services, phone=account.phone, purpose=sms.SmsPurpose.EXPORT_DATA, code=body.sms_code
    )
    async with services.db.session() as session:
        await sms.consume_code(session, services, code_id)
        archive = await personal_data.export_archive(
            session, services, await get_account(session, account.id)
        )
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="my-data.zip"', "Cache-Control": "no-store"},
    )


@router.get("/me/deletion", response_model=DeletionPreviewOut)
async def deletion_preview(services: ServicesDep, account: AccountDep) -> DeletionPreviewOut:
    async with services.db.session() as session:
        preview = await personal_data.deletion_preview(session, account)
    return DeletionPreviewOut(
        blockers=[BlockerOut(**b.__dict__) for b in preview.blockers],
        kept_orders=preview.kept_orders,
        kept_invoices=preview.kept_invoices,
        kept_certificates=preview.kept_certificates,
        documents=preview.documents,
    )


@router.post("/me/deletion", response_model=DeletedOut)
async def delete_my_account(body: CodeConfirm, services: ServicesDep, account: AccountDep) -> DeletedOut:
    """Delete the account (409 ``account_deletion_blocked`` with the blockers while a seal is
    live or an order open; the code is then not spent)."""
    async with services.db.session() as session:
        personal_data.refuse_if_blocked((await personal_data.deletion_preview(session, account)).blockers)
    code_id = await sms.verify_code(
        services, phone=account.phone, purpose=sms.SmsPurpose.DELETE_ACCOUNT, code=body.sms_code
    )
    async with services.db.session() as session:
        await sms.consume_code(session, services, code_id)
        deleted = await personal_data.delete_account(
            session, services, await get_account(session, account.id)
        )
    await personal_data.remove_blobs(services, deleted.orphan_blobs)
    return DeletedOut(documents=deleted.documents, orders_kept=deleted.orders_kept)


@router.post("/service/retention", response_model=RetentionOut)
async def apply_retention(services: ServicesDep) -> RetentionOut:
    """Delete what is past its retention period (the scheduler calls it with its housekeeping)."""
    report = await retention.apply_retention(services)
    return RetentionOut(scans=report.scans, sms_codes=report.sms_codes, logins=report.logins)
