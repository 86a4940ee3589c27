"""Document uploads are judged by their bytes; stored by hash; readable by their owner and staff."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import httpx
import pytest
from reportlab.pdfgen.canvas import Canvas

from seal_platform.settings import PlatformSettings
from tests.fakes.s3 import FakeS3
from tests.platform.conftest import MakeAccount
from tests.platform.conftest import TestAccount as Applicant
from tests.platform.test_orders_support import COMPANY, Staff, admin, create_order, png_bytes, upload

__all__ = ["admin"]


def pdf_bytes() -> bytes:
    out = io.BytesIO()
    canvas = Canvas(out)
    canvas.drawString(72, 720, "business licence")
    canvas.save()
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge canvas in a few dozen bytes: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


async def post_file(
    api: httpx.AsyncClient,
    account: Applicant,
    data: bytes,
    *,
    name: str = "scan.png",
    content_type: str = "image/png",
) -> httpx.Response:
    return await api.post(
        "/v1/documents",
        data={"kind": "business_licence"},
        files={"file": (name, data, content_type)},
        headers=account.headers,
    )


@pytest.fixture
async def applicant(make_account: MakeAccount) -> Applicant:
    return await make_account(realname=True)


async def test_upload_is_stored_by_hash_and_read_back_by_its_owner(
    api: httpx.AsyncClient, applicant: Applicant
) -> None:
    data = png_bytes()
    response = await post_file(api, applicant, data)
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    assert document["size"] == len(data)
    content = await api.get(f"/v1/documents/{document['id']}/content", headers=applicant.headers)
    assert content.content == data
    assert content.headers["content-type"] == "image/png"
    assert content.headers["x-content-type-options"] == "nosniff"


async def test_declared_name_and_type_are_not_trusted(api: httpx.AsyncClient, applicant: Applicant) -> None:
    response = await post_file(
        api, applicant, png_bytes(), name="licence.pdf", content_type="application/pdf"
    )
    assert response.status_code == 201
    assert response.json()["content_type"] == "image/png"
    assert response.json()["filename"] == "licence.png"


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a" + b"\x00" * 100,
        b"<html><script>alert(1)</script></html>",
        b"PK\x03\x04" + b"\x00" * 100,
        b"MZ\x90\x00" + b"\x00" * 100,
    ],
    ids=["gif", "html", "zip", "exe"],
)
async def test_files_that_are_not_jpeg_png_or_pdf_are_refused_whatever_they_claim(
    api: httpx.AsyncClient, applicant: Applicant, data: bytes
) -> None:
    response = await post_file(api, applicant, data, name="scan.png", content_type="image/png")
    assert response.status_code == 422
    assert response.json()["code"] == "unsupported_file_type"


async def test_pdf_is_accepted_and_a_truncated_pdf_is_refused(
    api: httpx.AsyncClient, applicant: Applicant
) -> None:
    pdf = pdf_bytes()
    accepted = await post_file(api, applicant, pdf, name="x.pdf", content_type="application/pdf")
    assert accepted.status_code == 201
    assert accepted.json()["content_type"] == "application/pdf"
    truncated = await post_file(
        api, applicant, pdf[: len(pdf) // 2], name="x.pdf", content_type="application/pdf"
    )
    assert truncated.status_code == 422
    assert truncated.json()["code"] == "corrupt_pdf"


async def test_oversized_upload_is_refused(api: httpx.AsyncClient, applicant: Applicant) -> None:
    data = b"\xff\xd8\xff\xe0" + b"\x00" * (10 * 1024 * 1024)
    response = await post_file(api, applicant, data, name="big.jpg", content_type="image/jpeg")
    assert response.status_code == 422
    assert response.json()["code"] == "file_too_large"


async def test_upload_limit_follows_the_setting(
    api: httpx.AsyncClient, applicant: Applicant, platform_settings: PlatformSettings
) -> None:
    platform_settings.upload_max_bytes = 200
    response = await post_file(api, applicant, png_bytes((64, 64)) + b"\x00" * 300)
    assert response.status_code == 422
    assert response.json()["code"] == "file_too_large"


async def test_image_declaring_a_huge_canvas_is_refused_as_a_bomb(
    api: httpx.AsyncClient, applicant: Applicant
) -> None:
    response = await post_file(api, applicant, png_header_only(50_000, 50_000))
    assert response.status_code == 422
    assert response.json()["code"] == "image_too_large"


async def test_pillows_own_decompression_bomb_error_becomes_invalid_input(
    api: httpx.AsyncClient, applicant: Applicant, platform_settings: PlatformSettings
) -> None:
    # With our own pixel limit out of the way, Pillow's DecompressionBombError must still refuse.
    platform_settings.upload_max_pixels = 10**12
    response = await post_file(api, applicant, png_header_only(30_000, 30_000))
    assert response.status_code == 422
    assert response.json()["code"] == "image_too_large"


async def test_corrupt_image_is_refused(api: httpx.AsyncClient, applicant: Applicant) -> None:
    response = await post_file(api, applicant, b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    assert response.status_code == 422
    assert response.json()["code"] == "corrupt_image"


async def test_order_cannot_use_another_accounts_document(
    api: httpx.AsyncClient, make_account: MakeAccount, applicant: Applicant
) -> None:
    other = await make_account(realname=True)
    theirs = await upload(api, other, "business_licence")
    response = await api.post(
        "/v1/orders",
        json={
            "type": "enterprise_seal",
            "company": COMPANY,
            "years": 1,
            "documents": {"business_licence": theirs},
        },
        headers=applicant.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "document_not_found"


async def test_document_of_the_wrong_kind_for_a_role_is_refused(
    api: httpx.AsyncClient, applicant: Applicant
) -> None:
    id_front = await upload(api, applicant, "id_card_front")
    response = await api.post(
        "/v1/orders",
        json={
            "type": "enterprise_seal",
            "company": COMPANY,
            "years": 1,
            "documents": {"business_licence": id_front},
        },
        headers=applicant.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "document_kind_mismatch"


async def test_impression_form_pdf_is_generated_for_the_order(
    api: httpx.AsyncClient, applicant: Applicant
) -> None:
    order = await create_order(api, applicant, {"type": "bundle", "company": COMPANY, "years": 1})
    form = await api.get(f"/v1/orders/{order['id']}/impression-form.pdf", headers=applicant.headers)
    assert form.status_code == 200, form.text
    assert form.content.startswith(b"%PDF-")
    personal = await api.get(
        f"/v1/orders/{order['id']}/impression-form.pdf",
        params={"seal_kind": "personal"},
        headers=applicant.headers,
    )
    assert personal.status_code == 200
    assert personal.content != form.content


async def test_staff_can_preview_an_applicants_upload(
    api: httpx.AsyncClient, applicant: Applicant, admin: Staff
) -> None:
    data = png_bytes()
    document_id = (await post_file(api, applicant, data)).json()["id"]
    preview = await api.get(f"/v1/staff/documents/{document_id}/content", headers=admin.headers)
    assert preview.status_code == 200
    assert preview.content == data
    assert (await api.get(f"/v1/staff/documents/{document_id}/content")).status_code == 401


async def test_s3_store_round_trips_signed_requests_and_detects_corruption() -> None:
    from seal_platform.clock import FrozenClock
    from seal_platform.errors import NotFound as PlatformNotFound
    from seal_platform.errors import UpstreamError
    from seal_platform.storage import S3BlobStore

    fake = FakeS3(access_key="AKIDEXAMPLE")
    store = S3BlobStore(
        endpoint_url="http://s3.test",
        bucket="seals",
        region="cn-south-1",
        access_key="AKIDEXAMPLE",
        secret_key="secret",
        clock=FrozenClock(),
        transport=httpx.MockTransport(fake.handle),
    )
    data = png_bytes()
    digest = await store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert await store.get(digest) == data
    assert fake.authorizations[0].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/cn-south-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
    )
    fake.replace(f"/seals/blobs/{digest}", b"tampered")
    with pytest.raises(UpstreamError):
        await store.get(digest)
    with pytest.raises(PlatformNotFound):
        await store.get("0" * 64)
