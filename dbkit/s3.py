"""An S3-compatible bucket as a ``dbkit.blobs.BlobBackend``, without an SDK.

Path-style URLs, requests signed with AWS Signature V4 through httpx, so any S3-compatible
store (MinIO, Ceph, COS, OSS in S3 mode) works. ``tests/platform/test_storage_s3_reference.py``
checks the signature against botocore's own signer.
"""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote, urlencode, urlsplit

import httpx

from dbkit.blobs import BlobNotFound, BlobUnavailable, check_key, sha256_hex

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Backend:
    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        now: Callable[[], datetime],
        prefix: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._endpoint = endpoint_url.rstrip("/")
        self._bucket = bucket
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._now = now
        self.prefix = prefix
        self._client = httpx.AsyncClient(transport=transport, timeout=30)

    def url_path(self, key: str) -> str:
        return f"/{self._bucket}/{quote(self.prefix + check_key(key), safe='/')}"

    def signed_headers(
        self, method: str, path: str, payload: bytes, now: datetime, query: str = ""
    ) -> dict[str, str]:
        host = urlsplit(self._endpoint).netloc
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        payload_hash = sha256_hex(payload)
        headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                method,
                path,
                query,
                "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                signed,
                payload_hash,
            ]
        )
        scope = f"{day}/{self._region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256_hex(canonical.encode())])
        key = ("AWS4" + self._secret_key).encode()
        for part in (day, self._region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        return headers

    async def _send(self, method: str, path: str, payload: bytes = b"", query: str = "") -> httpx.Response:
        headers = self.signed_headers(method, path, payload, self._now(), query)
        url = self._endpoint + path + (f"?{query}" if query else "")
        try:
            response = await self._client.request(method, url, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise BlobUnavailable("object store unreachable") from exc
        if response.status_code >= 300 and response.status_code != 404:
            raise BlobUnavailable(f"object store answered {response.status_code} to {method}")
        return response

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    async def write(self, key: str, data: bytes) -> None:
        await self._send("PUT", self.url_path(key), data)

    async def read(self, key: str) -> bytes:
        response = await self._send("GET", self.url_path(key))
        if response.status_code == 404:
            raise BlobNotFound(key)
        return response.content

    async def exists(self, key: str) -> bool:
        return (await self._send("HEAD", self.url_path(key))).status_code != 404

    async def delete(self, key: str) -> None:
        await self._send("DELETE", self.url_path(key))

    async def keys(self, *, written_before: datetime | None = None, prefix: str = "") -> list[str]:
        found: list[str] = []
        token = ""
        while True:
            params = {"list-type": "2", "prefix": self.prefix + prefix}
            if token:
                params["continuation-token"] = token
            # SigV4 wants the canonical query sorted and percent-encoded as AWS does.
            query = urlencode(sorted(params.items()), quote_via=quote, safe="-_.~")
            response = await self._send("GET", f"/{self._bucket}", query=query)
            try:
                # The operator's own bucket answers over a signed request; expat (>= 2.4.1, bundled
                # with Python) also refuses entity-expansion bombs.
                root = ET.fromstring(response.content)  # noqa: S314
            except ET.ParseError as exc:
                raise BlobUnavailable("object store listing is not XML") from exc
            for item in root.iter(f"{_NS}Contents"):
                name = item.findtext(f"{_NS}Key") or ""
                modified = item.findtext(f"{_NS}LastModified") or ""
                if written_before is not None and modified:
                    stamp = datetime.fromisoformat(modified.replace("Z", "+00:00"))
                    if stamp >= written_before:
                        continue
                found.append(name[len(self.prefix) :])
            token = root.findtext(f"{_NS}NextContinuationToken") or ""
            if root.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return sorted(found)

    async def close(self) -> None:
        await self._client.aclose()
