"""Documents endpoints: upload scans (multipart), read them back, the blank impression form.

``SubAPI._request`` speaks JSON only; uploads and downloads go through ``BinaryAPI._raw``,
which uses the transport's ``call_raw`` (same credential, base URL, error mapping).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from platform_client.base import SubAPI
from platform_client.models import PlatformModel

UploadKind = Literal["business_licence", "id_card_front", "id_card_back", "impression_form"]


class Document(PlatformModel):
    id: str
    kind: str
    content_type: str
    size: int
    sha256: str
    filename: str
    created_at: datetime


class BinaryAPI(SubAPI):
    """A sub-API that also sends multipart bodies or reads non-JSON answers."""

    # Its calls go through the client's public ``call_raw`` (same headers, retries, errors).


class DocumentsAPI(BinaryAPI):
    async def upload(
        self, token: str, kind: UploadKind, content: bytes, *, filename: str = "scan", content_type: str = ""
    ) -> Document:
        """Upload a scan; the platform judges its type by content (JPEG, PNG or PDF)."""
        response = await self._transport.call_raw(
            "POST",
            "/v1/documents",
            account_token=token,
            data={"kind": kind},
            files={"file": (filename, content, content_type or "application/octet-stream")},
        )
        return self._parse(Document, response.json())

    async def get(self, token: str, document_id: str) -> Document:
        return self._parse(
            Document, await self._request("GET", f"/v1/documents/{document_id}", account_token=token)
        )

    async def content(self, token: str, document_id: str) -> bytes:
        response = await self._transport.call_raw(
            "GET", f"/v1/documents/{document_id}/content", account_token=token
        )
        return response.content

    async def impression_form(self, token: str, order_id: str, *, seal_kind: str | None = None) -> bytes:
        """The pre-filled 印模采集表 PDF of an order (``seal_kind`` picks one seal of a bundle)."""
        params = {"seal_kind": seal_kind} if seal_kind else None
        response = await self._transport.call_raw(
            "GET", f"/v1/orders/{order_id}/impression-form.pdf", account_token=token, params=params
        )
        return response.content
