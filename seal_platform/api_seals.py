"""REST endpoints of an applicant's seals and companies (what the bot lists under 证章信息)."""

from __future__ import annotations

from datetime import datetime

from fastapi import Response
from pydantic import BaseModel

from seal_platform.auth import AccountDep, ServicesDep, service_router
from seal_platform.companies import Company, get_company, list_companies
from seal_platform.documents import get_document, read_content
from seal_platform.errors import NotFound
from seal_platform.seals import Seal, get_seal, list_seals, renewal_opens_at

router = service_router(prefix="/v1", tags=["seals"])


class SealOut(BaseModel):
    id: str
    company_id: str
    kind: str
    status: str
    holder_name: str
    seal_code: str
    certificate_serial: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    key_serial: str | None
    impression_document_id: str | None
    seseal_document_id: str | None
    # When a renewal may be ordered (the manual: within 60 days of expiry).
    renewal_opens_at: datetime | None = None
    renewable_now: bool = False


class CompanyOut(BaseModel):
    id: str
    name: str
    uscc: str
    legal_rep_name: str
    legal_rep_id_masked: str
    created_at: datetime


def seal_out(seal: Seal, now: datetime, window_days: int) -> SealOut:
    out = SealOut.model_validate(seal, from_attributes=True)
    out.renewal_opens_at = renewal_opens_at(seal, window_days)
    out.renewable_now = out.renewal_opens_at is not None and now >= out.renewal_opens_at
    return out


def company_out(company: Company) -> CompanyOut:
    return CompanyOut.model_validate(company, from_attributes=True)


@router.get("/seals", response_model=list[SealOut])
async def get_seals(services: ServicesDep, account: AccountDep) -> list[SealOut]:
    now, window = services.clock.now(), services.settings.renewal_window_days
    async with services.db.session() as session:
        return [seal_out(s, now, window) for s in await list_seals(session, account.id)]


@router.get("/seals/{seal_id}", response_model=SealOut)
async def get_one_seal(seal_id: str, services: ServicesDep, account: AccountDep) -> SealOut:
    async with services.db.session() as session:
        seal = await get_seal(session, account.id, seal_id)
        return seal_out(seal, services.clock.now(), services.settings.renewal_window_days)


@router.get("/seals/{seal_id}/impression.png")
async def seal_impression(seal_id: str, services: ServicesDep, account: AccountDep) -> Response:
    async with services.db.session() as session:
        seal = await get_seal(session, account.id, seal_id)
        if seal.impression_document_id is None:
            raise NotFound("the seal has no impression yet", seal_id=seal_id)
        document = await get_document(session, account.id, seal.impression_document_id)
    return Response(await read_content(services, document), media_type=document.content_type)


@router.get("/companies", response_model=list[CompanyOut])
async def get_companies(services: ServicesDep, account: AccountDep) -> list[CompanyOut]:
    async with services.db.session() as session:
        return [company_out(c) for c in await list_companies(session, account.id)]


@router.get("/companies/{company_id}", response_model=CompanyOut)
async def get_one_company(company_id: str, services: ServicesDep, account: AccountDep) -> CompanyOut:
    async with services.db.session() as session:
        return company_out(await get_company(session, account.id, company_id))
