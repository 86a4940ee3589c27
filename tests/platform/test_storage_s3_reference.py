"""The S3 blob store's hand-written Signature V4 checked against botocore, AWS's own signer.

The in-test fake S3 in test_documents.py stores what it is sent without checking the signature,
so a signer that drifts from AWS's rules would pass there and fail against a real bucket. Here
the same request is signed by botocore's ``S3SigV4Auth`` and the two Authorization headers
must be identical (SigV4 is deterministic for a given time, request and key).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from seal_platform.clock import FrozenClock
from seal_platform.storage import S3BlobStore

ENDPOINT = "http://127.0.0.1:9000"
NOW = datetime(2026, 11, 30, 8, 1, 2, tzinfo=UTC)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _store(region: str) -> S3BlobStore:
    return S3BlobStore(
        endpoint_url=ENDPOINT,
        bucket="sealbot-docs",
        region=region,
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key=SECRET,
        clock=FrozenClock(NOW),
        prefix="blobs/",
    )


def _botocore_authorization(method: str, path: str, payload: bytes, region: str, secret: str) -> str:
    """botocore's ``add_auth`` step by step, with the signing time fixed instead of read."""
    auth = S3SigV4Auth(Credentials("AKIAIOSFODNN7EXAMPLE", secret), "s3", region)
    request = AWSRequest(method=method, url=ENDPOINT + path, data=payload)
    request.context["timestamp"] = NOW.strftime("%Y%m%dT%H%M%SZ")
    auth._modify_request_before_signing(request)
    signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    auth._inject_signature_to_request(request, signature)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize(
    ("method", "payload", "region"),
    [
        ("PUT", "印模采集表.pdf 的内容".encode(), "cn-north-1"),
        ("GET", b"", "us-east-1"),
        ("PUT", b"", "ap-east-1"),
    ],
)
def test_signature_v4_matches_botocore(method: str, payload: bytes, region: str) -> None:
    store = _store(region)
    path = store._url_path("ab" * 32)
    ours = store.signed_headers(method, path, payload, NOW)
    assert ours["authorization"] == _botocore_authorization(method, path, payload, region, SECRET)


def test_a_changed_secret_changes_the_signature() -> None:
    """The comparison above is not vacuous: botocore's answer depends on the key."""
    store = _store("cn-north-1")
    path = store._url_path("cd" * 32)
    ours = store.signed_headers("GET", path, b"", NOW)
    assert ours["authorization"] == _botocore_authorization("GET", path, b"", "cn-north-1", SECRET)
    assert ours["authorization"] != _botocore_authorization("GET", path, b"", "cn-north-1", "another")
