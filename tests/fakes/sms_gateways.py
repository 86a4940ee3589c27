"""Fake Tencent Cloud and Alibaba Cloud SMS gateways on 127.0.0.1 that verify each request's
signature as the real gateways do (TC3-HMAC-SHA256; ACS3-HMAC-SHA256), record what was sent,
and answer with scripted codes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from tests.fakes.http import serving

KEY_ID = "AKIDfake0123456789"
SECRET = "fake-gateway-secret-0123456789"


@dataclass
class Sent:
    phone: str
    sign_name: str
    template: str
    params: list[str]


@dataclass
class FakeGateway:
    kind: str  # "tencent" or "aliyun"
    key_id: str = KEY_ID
    secret: str = SECRET
    # Codes to answer with, first to last; afterwards every request succeeds. "http500" answers
    # with a server error.
    script: deque[str] = field(default_factory=deque)
    sent: list[Sent] = field(default_factory=list)
    requests: int = 0
    bad_signatures: int = 0
    endpoint: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *codes: str) -> None:
        self.script.extend(codes)

    # -- signature checks, written from the providers' documentation --------------------------

    def tencent_signature_ok(self, headers: dict[str, str], body: bytes) -> bool:
        auth = headers.get("authorization", "")
        try:
            algorithm, rest = auth.split(" ", 1)
            parts = dict(item.strip().split("=", 1) for item in rest.split(","))
            key_id, date, service, terminator = parts["Credential"].split("/")
        except ValueError:
            return False
        timestamp = int(headers.get("x-tc-timestamp", "0"))
        if (
            algorithm != "TC3-HMAC-SHA256"
            or key_id != self.key_id
            or service != "sms"
            or terminator != "tc3_request"
            or abs(time.time() - timestamp) > 300
            or datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") != date
        ):
            return False
        signed = parts["SignedHeaders"]
        canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed.split(";"))
        canonical = "\n".join(["POST", "/", "", canonical_headers, signed, hashlib.sha256(body).hexdigest()])
        scope = f"{date}/sms/tc3_request"
        to_sign = "\n".join(
            ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )

        def mac(key: bytes, text: str) -> bytes:
            return hmac.new(key, text.encode(), hashlib.sha256).digest()

        signing = mac(mac(mac(("TC3" + self.secret).encode(), date), "sms"), "tc3_request")
        expected = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("Signature", ""))

    def aliyun_signature_ok(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> bool:
        auth = headers.get("authorization", "")
        try:
            algorithm, rest = auth.split(" ", 1)
            parts = dict(item.strip().split("=", 1) for item in rest.split(","))
        except ValueError:
            return False
        payload_hash = hashlib.sha256(body).hexdigest()
        if (
            algorithm != "ACS3-HMAC-SHA256"
            or parts.get("Credential") != self.key_id
            or headers.get("x-acs-content-sha256") != payload_hash
        ):
            return False
        signed = parts["SignedHeaders"].split(";")
        if not {"host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce"} <= set(signed):
            return False
        pairs = sorted(parse_qsl(query, keep_blank_values=True))
        canonical_query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)
        canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
        canonical = "\n".join(
            [method, path or "/", canonical_query, canonical_headers, ";".join(signed), payload_hash]
        )
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(self.secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("Signature", ""))

    # -- answers ---------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            scripted = self.script.popleft() if self.script else None
        url = urlsplit(target)
        if self.kind == "tencent":
            return self._tencent(headers, body, scripted)
        return self._aliyun(method, url.path, url.query, headers, body, scripted)

    def _tencent(
        self, headers: dict[str, str], body: bytes, scripted: str | None
    ) -> tuple[int, dict[str, Any]]:
        request_id = f"req-{self.requests}"
        if not self.tencent_signature_ok(headers, body) or headers.get("x-tc-action") != "SendSms":
            self.bad_signatures += 1
            error = {
                "Code": "AuthFailure.SignatureFailure",
                "Message": "The provided credentials could not be validated.",
            }
            return 200, {"Response": {"Error": error, "RequestId": request_id}}
        if scripted == "http500":
            return 500, {}
        if scripted is not None and scripted.startswith(("InternalError", "RequestLimitExceeded")):
            return 200, {
                "Response": {"Error": {"Code": scripted, "Message": "try again"}, "RequestId": request_id}
            }
        data = json.loads(body)
        phone = data["PhoneNumberSet"][0]
        code = scripted or "Ok"
        if code == "Ok":
            self.sent.append(
                Sent(phone, data["SignName"], data["TemplateId"], list(data["TemplateParamSet"]))
            )
        status = {
            "SerialNo": "2019:1",
            "PhoneNumber": phone,
            "Fee": 1,
            "SessionContext": "",
            "Code": code,
            "Message": "send success" if code == "Ok" else "refused",
            "IsoCode": "CN",
        }
        return 200, {"Response": {"SendStatusSet": [status], "RequestId": request_id}}

    def _aliyun(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, scripted: str | None
    ) -> tuple[int, dict[str, Any]]:
        request_id = f"REQ-{self.requests}"
        if (
            not self.aliyun_signature_ok(method, path, query, headers, body)
            or headers.get("x-acs-action") != "SendSms"
        ):
            self.bad_signatures += 1
            return 400, {
                "Code": "SignatureDoesNotMatch",
                "Message": "Specified signature is not matched.",
                "RequestId": request_id,
            }
        if scripted == "http500":
            return 500, {"Code": "InternalError", "Message": "server error", "RequestId": request_id}
        params = dict(parse_qsl(query, keep_blank_values=True))
        code = scripted or "OK"
        if code == "OK":
            values = list(json.loads(params["TemplateParam"]).values())
            self.sent.append(Sent(params["PhoneNumbers"], params["SignName"], params["TemplateCode"], values))
        return 200, {
            "Code": code,
            "Message": "OK" if code == "OK" else "refused",
            "BizId": "900619746936498440^0",
            "RequestId": request_id,
        }


@contextmanager
def running(gateway: FakeGateway) -> Iterator[FakeGateway]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, answer = gateway.handle("POST", self.path, headers, body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass

    with serving(Handler) as base_url:
        gateway.endpoint = base_url.removeprefix("http://")
        yield gateway
