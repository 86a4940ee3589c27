"""Documents: uploaded scans and platform-made files (forms, impressions, invoices).

An upload is judged by its bytes, never by the name or content type the client declares:
JPEG, PNG and PDF only (magic bytes), at most ``upload_max_bytes``, and images are opened with
Pillow to refuse decompression bombs and corrupt files. The bytes go to the blob store under
their SHA-256; the row says whose they are.
"""

from __future__ import annotations

import asyncio
import io
import uuid
import warnings
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from PIL import Image, UnidentifiedImageError
from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.errors import InvalidInput, NotFound
from seal_platform.services import PlatformServices


class DocumentKind(StrEnum):
    # Uploaded by applicants.
    BUSINESS_LICENCE = "business_licence"
    ID_CARD_FRONT = "id_card_front"
    ID_CARD_BACK = "id_card_back"
    IMPRESSION_FORM = "impression_form"
    # Made by the platform.
    IMPRESSION_FORM_BLANK = "impression_form_blank"
    IMPRESSION_IMAGE = "impression_image"
    SESEAL = "seseal"
    INVOICE_PDF = "invoice_pdf"


UPLOAD_KINDS = frozenset(
    {
        DocumentKind.BUSINESS_LICENCE,
        DocumentKind.ID_CARD_FRONT,
        DocumentKind.ID_CARD_BACK,
        DocumentKind.IMPRESSION_FORM,
    }
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
PDF_MAGIC = b"%PDF-"


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


def sniff_content_type(data: bytes) -> str:
    """The type the bytes actually are; ``InvalidInput`` unless JPEG, PNG or PDF."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    # Acrobat tolerates up to 1 KB of junk before the header; we do not.
    if data.startswith(PDF_MAGIC):
        return "application/pdf"
    raise InvalidInput("只支持 JPG、PNG 或 PDF 文件", code="unsupported_file_type")


def check_image(data: bytes, max_pixels: int) -> tuple[int, int]:
    """Open the image header and the pixel data; refuse bombs and broken files."""
    try:
        with warnings.catch_warnings():
            # Between MAX_IMAGE_PIXELS and twice that Pillow only warns: treat it as refusal too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise InvalidInput(
                        "图片尺寸过大",
                        code="image_too_large",
                        width=width,
                        height=height,
                        max_pixels=max_pixels,
                    )
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput("图片尺寸过大", code="image_too_large") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput("图片文件已损坏或无法识别", code="corrupt_image") from exc
    return width, height


def check_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> str:
    """The sniffed content type of an acceptable upload (blocking: call in a thread)."""
    if len(data) > max_bytes:
        raise InvalidInput("文件过大", code="file_too_large", size=len(data), max_bytes=max_bytes)
    if not data:
        raise InvalidInput("文件为空", code="empty_file")
    content_type = sniff_content_type(data)
    if content_type.startswith("image/"):
        check_image(data, max_pixels)
    elif b"%%EOF" not in data[-2048:]:
        raise InvalidInput("PDF 文件不完整", code="corrupt_pdf")
    return content_type


def _safe_filename(name: str | None, content_type: str) -> str:
    extension = {"image/png": ".png", "image/jpeg": ".jpg", "application/pdf": ".pdf"}[content_type]
    stem = (name or "upload").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].rsplit(".", 1)[0]
    stem = "".join(ch for ch in stem if ch.isalnum() or ch in "-_ ")[:80].strip() or "upload"
    return stem + extension


async def upload_document(
    session: AsyncSession,
    services: PlatformServices,
    *,
    account_id: str,
    kind: DocumentKind,
    data: bytes,
    filename: str | None,
) -> Document:
    if kind not in UPLOAD_KINDS:
        raise InvalidInput("this document kind cannot be uploaded", code="document_kind_invalid", kind=kind)
    settings = services.settings
    content_type = await asyncio.to_thread(
        check_upload, data, max_bytes=settings.upload_max_bytes, max_pixels=settings.upload_max_pixels
    )
    return await store_document(
        session,
        services,
        account_id=account_id,
        kind=kind,
        data=data,
        content_type=content_type,
        filename=_safe_filename(filename, content_type),
    )


class SealArtefacts(Protocol):
    """What seal production made: the impression picture and the signed GB/T 38540 seal."""

    @property
    def impression_png(self) -> bytes: ...

    @property
    def seseal_der(self) -> bytes: ...


async def store_seal_artefacts(
    session: AsyncSession,
    services: PlatformServices,
    *,
    account_id: str,
    seal_code: str,
    issued: SealArtefacts,
) -> tuple[Document, Document]:
    """Keep a produced seal's impression image and SESeal as the holder's documents."""
    impression = await store_document(
        session,
        services,
        account_id=account_id,
        kind=DocumentKind.IMPRESSION_IMAGE,
        data=issued.impression_png,
        content_type="image/png",
        filename=f"seal-{seal_code}.png",
    )
    seseal = await store_document(
        session,
        services,
        account_id=account_id,
        kind=DocumentKind.SESEAL,
        data=issued.seseal_der,
        content_type="application/octet-stream",
        filename=f"seal-{seal_code}.ses",
    )
    return impression, seseal


async def store_document(
    session: AsyncSession,
    services: PlatformServices,
    *,
    account_id: str,
    kind: DocumentKind,
    data: bytes,
    content_type: str,
    filename: str,
) -> Document:
    """Record bytes the platform trusts (checked uploads, or files it made itself)."""
    digest = await services.blob_store.put(data)
    document = Document(
        account_id=account_id,
        kind=kind.value,
        content_type=content_type,
        size=len(data),
        sha256=digest,
        filename=filename,
        created_at=services.clock.now(),
    )
    session.add(document)
    await session.flush()
    return document


async def get_document(session: AsyncSession, account_id: str, document_id: str) -> Document:
    document = await session.get(Document, document_id)
    if document is None or document.account_id != account_id:
        raise NotFound("document not found", document_id=document_id)
    return document


async def get_document_any(session: AsyncSession, document_id: str) -> Document:
    """For staff preview: not scoped to an account."""
    document = await session.get(Document, document_id)
    if document is None:
        raise NotFound("document not found", document_id=document_id)
    return document


async def read_content(services: PlatformServices, document: Document) -> bytes:
    return await services.blob_store.get(document.sha256)


async def impression_form_pdf(
    session: AsyncSession,
    services: PlatformServices,
    *,
    account_id: str,
    order_id: str,
    seal_kind: str | None,
) -> bytes:
    """The pre-filled 印模采集表 of one of the order's seals (``seal_kind`` picks one of a bundle)."""
    # Imported here: documents is a low-level module that orders and companies build on.
    from seal_platform.accounts import get_account
    from seal_platform.companies import get_company
    from seal_platform.orders import OrderType, get_order, order_code
    from seal_platform.pricing import NEW_SEAL_KINDS
    from seal_platform.production.impression_form import ImpressionFormData, render_impression_form
    from seal_platform.production.seseal import SealKind
    from seal_platform.seals import get_seal

    order = await get_order(session, account_id, order_id)
    if order.seal_id is not None:
        kinds: tuple[str, ...] = ((await get_seal(session, account_id, order.seal_id)).kind,)
    else:
        kinds = NEW_SEAL_KINDS.get(order.type, ())
    if order.type not in (*NEW_SEAL_KINDS, OrderType.CHANGE) or order.company_id is None or not kinds:
        raise InvalidInput("this order needs no impression form", code="impression_form_not_applicable")
    kind = seal_kind or kinds[0]
    if kind not in kinds:
        raise InvalidInput(
            "the order makes no seal of this kind", code="seal_kind_invalid", kinds=list(kinds)
        )
    company = await get_company(session, account_id, order.company_id)
    account = await get_account(session, account_id)
    change = order.details.get("change", {})
    data = ImpressionFormData(
        order_number=order_code(order.id),
        company_name=change.get("company_name") or company.name,
        uscc=company.uscc,
        legal_representative=change.get("legal_rep_name") or company.legal_rep_name,
        seal_kind=SealKind.ORGANISATION if kind == "enterprise" else SealKind.PERSONAL,
        applied_on=services.clock.now().date(),
        agent_name=account.real_name or "",
        agent_phone=account.phone,
    )
    return await asyncio.to_thread(render_impression_form, data)
