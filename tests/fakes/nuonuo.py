"""A fake Nuonuo open platform on 127.0.0.1: verifies each call's X-Nuonuo-Sign (HmacSHA1 over
"a=services&l=v1&p=open&k=..&i=..&n=..&t=..&f=<body>" with the app secret), accepts
``requestBillingNew`` (refusing an ``orderNo`` it has seen, as Nuonuo does), answers
``queryInvoiceResult`` for the serial number it gave (``invoiceSerialNum``) with "开票中" a given
number of times and then "开票完成" with file URLs it serves itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.http import serving

APP_KEY = "nuonuo-app-key"
APP_SECRET = "nuonuo-app-secret"
ACCESS_TOKEN = "nuonuo-access-token"
PDF = b"%PDF-1.7\n% issued by the tax system\n"
OFD = b"PK\x03\x04 an ofd container"


@dataclass
class FakeNuonuo:
    seller_tax_number: str
    pending_polls: int = 1
    orders: list[dict[str, Any]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    bad_signatures: int = 0
    fail_with: str | None = None  # a failure status for queryInvoiceResult, e.g. "22"
    base_url: str = ""
    repeated_orders: int = 0  # requestBillingNew refused for an orderNo already submitted
    # The next accepted request's answer is lost on the way back (the connection drops after
    # Nuonuo took the order): the caller never learns its serial number.
    lose_next_answer: bool = False
    _polls: int = 0

    @staticmethod
    def serial_of(index: int) -> str:
        """The serial number given to the ``index``-th accepted request (the first is the one
        of Nuonuo's documentation example)."""
        return str(22072015181902023731 + index)

    def signature_ok(self, query: dict[str, str], headers: dict[str, str], body: bytes) -> bool:
        if query.get("appkey") != APP_KEY or headers.get("accesstoken") != ACCESS_TOKEN:
            return False
        if abs(time.time() - int(query.get("timestamp", "0"))) > 300 or len(query.get("senid", "")) != 32:
            return False
        text = (
            f"a=services&l=v1&p=open&k={APP_KEY}&i={query['senid']}&n={query['nonce']}"
            f"&t={query['timestamp']}&f={body.decode()}"
        )
        expected = base64.b64encode(
            hmac.new(APP_SECRET.encode(), text.encode(), hashlib.sha1).digest()
        ).decode()
        return hmac.compare_digest(expected, headers.get("x-nuonuo-sign", ""))

    def answer(self, query: dict[str, str], headers: dict[str, str], body: bytes) -> dict[str, Any]:
        if not self.signature_ok(query, headers, body):
            self.bad_signatures += 1
            return {"code": "070301", "describe": "签名验证失败"}
        if headers.get("usertax") != self.seller_tax_number:
            return {"code": "070302", "describe": "税号不一致"}
        method = headers.get("method", "")
        self.methods.append(method)
        content = json.loads(body)
        if method == "nuonuo.OpeMplatform.requestBillingNew":
            order_no = content["order"]["orderNo"]
            if any(seen["orderNo"] == order_no for seen in self.orders):
                self.repeated_orders += 1
                return {"code": "E9106", "describe": f"订单编号{order_no}已存在，请勿重复提交"}
            self.orders.append(content["order"])
            return {
                "code": "E0000",
                "describe": "开票提交成功",
                "result": {"invoiceSerialNum": self.serial_of(len(self.orders) - 1)},
            }
        if method == "nuonuo.OpeMplatform.queryInvoiceResult":
            known = [self.serial_of(i) for i in range(len(self.orders))]
            if len(content["serialNos"]) != 1 or content["serialNos"][0] not in known:
                return {"code": "E9999", "describe": "流水号不存在"}
            self._polls += 1
            if self._polls <= self.pending_polls:
                return {
                    "code": "E0000",
                    "describe": "",
                    "result": [{"serialNo": content["serialNos"][0], "status": "20", "statusMsg": "开票中"}],
                }
            if self.fail_with:
                return {
                    "code": "E0000",
                    "describe": "",
                    "result": [
                        {"status": self.fail_with, "statusMsg": "开票失败", "failCause": "购方名称与税号不符"}
                    ],
                }
            detail = self.orders[-1]["invoiceDetail"][0]
            return {
                "code": "E0000",
                "describe": "",
                "result": [
                    {
                        "serialNo": content["serialNos"][0],
                        "status": "2",
                        "statusMsg": "开票完成",
                        "invoiceNo": "26442000000000012345",
                        "invoiceTime": 1796011200000,  # 2026-12-01 in China
                        "taxIncludedAmount": detail["taxIncludedAmount"],
                        "taxExcludedAmount": detail["taxExcludedAmount"],
                        "pdfUrl": f"{self.base_url}/files/invoice.pdf",
                        "ofdUrl": f"{self.base_url}/files/invoice.ofd",
                    }
                ],
            }
        return {"code": "070001", "describe": "unknown method"}


@contextmanager
def running(fake: FakeNuonuo) -> Iterator[FakeNuonuo]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            files = {"/files/invoice.pdf": PDF, "/files/invoice.ofd": OFD}
            data = files.get(self.path)
            self._send(200 if data else 404, data or b"", "application/octet-stream")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urlsplit(self.path)
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = fake.answer(dict(parse_qsl(url.query)), headers, body)
            if fake.lose_next_answer and answer.get("code") == "E0000":
                fake.lose_next_answer = False
                self._send(502, b"", "text/plain")  # what a proxy says when the line dropped
                return
            self._send(200, json.dumps(answer, ensure_ascii=False).encode(), "application/json")

        def log_message(self, *_args: Any) -> None:
            pass

    with serving(Handler) as base_url:
        fake.base_url = base_url
        yield fake
