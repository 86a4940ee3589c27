"""The CA's public endpoints: the CRL and OCSP (no authentication: relying parties call them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from seal_platform.auth import ServicesDep
from seal_platform.production.revocation import current_crl, ocsp_answer

router = APIRouter(prefix="/ca", tags=["ca"])

MAX_OCSP_REQUEST_BYTES = 10_000


@router.get("/crl")
async def crl(services: ServicesDep) -> Response:
    return Response(await current_crl(services), media_type="application/pkix-crl")


@router.post("/ocsp")
async def ocsp(request: Request, services: ServicesDep) -> Response:
    body = await request.body()
    answer = await ocsp_answer(services, body[:MAX_OCSP_REQUEST_BYTES])
    return Response(answer, media_type="application/ocsp-response")
