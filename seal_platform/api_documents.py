"""REST endpoints of documents: upload scans, read them back, get the blank impression form."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import File, Form, Request, Response, UploadFile, status
from pydantic import BaseModel

from seal_platform import documents
from seal_platform.auth import AccountDep, ServicesDep, service_router
from seal_platform.documents import DocumentKind
from seal_platform.errors import InvalidInput

router = service_router(prefix="/v1", tags=["documents"])

# Multipart framing around the file; a request larger than the limit plus this is refused
# before its body is read.
MULTIPART_OVERHEAD = 64 * 1024
READ_CHUNK = 256 * 1024


class DocumentOut(BaseModel):
    id: str
    kind: str
    content_type: str
    size: int
    sha256: str
    filename: str
    created_at: datetime


def attachment(data: bytes, content_type: str, filename: str) -> Response:
    return Response(
        data,
        media_type=content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise InvalidInput("文件过大", code="file_too_large", max_bytes=limit)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/documents", status_code=status.HTTP_201_CREATED, response_model=DocumentOut)
async def upload(
    request: Request,
    services: ServicesDep,
    account: AccountDep,
    kind: Annotated[DocumentKind, Form()],
    file: Annotated[UploadFile, File()],
) -> DocumentOut:
    """Upload a scan (JPEG, PNG or PDF, judged by its content) of ``kind``."""
    limit = services.settings.upload_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise InvalidInput("文件过大", code="file_too_large", max_bytes=limit)
    data = await _read_limited(file, limit)
    async with services.db.session() as session:
        document = await documents.upload_document(
            session, services, account_id=account.id, kind=kind, data=data, filename=file.filename
        )
        return DocumentOut.model_validate(document, from_attributes=True)


@router.get("/documents/{document_id}", response_model=DocumentOut)
async def get_one(document_id: str, services: ServicesDep, account: AccountDep) -> DocumentOut:
    async with services.db.session() as session:
        document = await documents.get_document(session, account.id, document_id)
        return DocumentOut.model_validate(document, from_attributes=True)


@router.get("/documents/{document_id}/content")
async def content(document_id: str, services: ServicesDep, account: AccountDep) -> Response:
    async with services.db.session() as session:
        document = await documents.get_document(session, account.id, document_id)
    data = await documents.read_content(services, document)
    return attachment(data, document.content_type, document.filename)


@router.get("/orders/{order_id}/impression-form.pdf")
async def impression_form(
    order_id: str, services: ServicesDep, account: AccountDep, seal_kind: str | None = None
) -> Response:
    """The 印模采集表 for this order, pre-filled, to print, fill in, stamp, scan and upload."""
    async with services.db.session() as session:
        pdf = await documents.impression_form_pdf(
            session, services, account_id=account.id, order_id=order_id, seal_kind=seal_kind
        )
    return attachment(pdf, "application/pdf", f"impression-form-{order_id[:8]}.pdf")
