"""An S3-compatible bucket in memory, for ``httpx.MockTransport``: PUT, GET, HEAD, DELETE and
ListObjectsV2, every request checked for a SigV4 signature over the payload it carries."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import httpx


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FakeS3:
    """Objects by request path (``/<bucket>/<key>``), each with its LastModified from ``now``.

    ``access_key``: every request must be signed with it. ``authorizations`` keeps each
    request's Authorization header, in order."""

    def __init__(self, now: Callable[[], datetime] = _utcnow, *, access_key: str | None = None) -> None:
        self.now = now
        self.access_key = access_key
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.authorizations: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        authorization = request.headers["authorization"]
        credential = f"AWS4-HMAC-SHA256 Credential={self.access_key or ''}"
        assert authorization.startswith(credential + ("/" if self.access_key else "")), authorization
        assert request.headers["x-amz-content-sha256"] == hashlib.sha256(request.content).hexdigest()
        self.authorizations.append(authorization)
        path = request.url.path
        if request.method == "PUT":
            self.objects[path] = (request.content, self.now())
            return httpx.Response(200)
        if request.method == "DELETE":
            self.objects.pop(path, None)
            return httpx.Response(204)
        if request.method == "GET" and request.url.query:
            return self._list(path, parse_qs(request.url.query.decode()))
        if path not in self.objects:
            return httpx.Response(404)
        return httpx.Response(200, content=self.objects[path][0] if request.method == "GET" else b"")

    def replace(self, path: str, data: bytes) -> None:
        """Change an object behind the store's back (corruption, another writer)."""
        self.objects[path] = (data, self.now())

    def _list(self, bucket_path: str, query: dict[str, list[str]]) -> httpx.Response:
        assert query["list-type"] == ["2"]
        prefix = bucket_path + "/" + query.get("prefix", [""])[0]
        items = "".join(
            f"<Contents><Key>{escape(path[len(bucket_path) + 1 :])}</Key>"
            f"<LastModified>{stamp.strftime('%Y-%m-%dT%H:%M:%S.000Z')}</LastModified></Contents>"
            for path, (_data, stamp) in sorted(self.objects.items())
            if path.startswith(prefix)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<IsTruncated>false</IsTruncated>{items}</ListBucketResult>"
        )
        return httpx.Response(200, content=body.encode())


class RecordingTransport(httpx.MockTransport):
    """``fake``'s transport, counting how often the client that owns it is closed."""

    def __init__(self, fake: FakeS3) -> None:
        super().__init__(fake.handle)
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1
