"""The WeChat Pay v3 provider (``wechatpayv3``) against a fake gateway on 127.0.0.1.

The fake signs its answers and notifications with a locally generated "platform" key, as
WeChat Pay does; the SDK verifies the answers, our notification path verifies the rest.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from seal_platform import payments
from seal_platform.payments.sandbox import SandboxSigner, transaction_resource
from seal_platform.payments.wechatpay import WeChatPayProvider
from seal_platform.services import PlatformServices
from tests.platform.conftest import MakeAccount
from tests.platform.test_orders_support import new_enterprise_order, submit

MCHID = "1230000109"
APPID = "wxd678efh567hg6787"
PUBLIC_KEY_ID = "PUB_KEY_ID_0112345678"


class FakeWeChatPay:
    """Just enough of api.mch.weixin.qq.com: Native/JSAPI orders, query and close."""

    def __init__(self) -> None:
        self.platform = SandboxSigner()
        self.platform.serial = PUBLIC_KEY_ID
        self.trades: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []

    def answer(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any] | None]:
        self.requests.append((method, path, body))
        if method == "POST" and path in ("/v3/pay/transactions/native", "/v3/pay/transactions/jsapi"):
            assert body is not None
            self.trades[body["out_trade_no"]] = {"state": "NOTPAY", "amount": body["amount"]["total"]}
            if path.endswith("native"):
                return 200, {"code_url": f"weixin://wxpay/bizpayurl?pr={secrets.token_hex(4)}"}
            return 200, {"prepay_id": "wx" + secrets.token_hex(8)}
        if method == "GET" and path.startswith("/v3/pay/transactions/out-trade-no/"):
            out_trade_no = path.split("/")[-1].split("?")[0]
            trade = self.trades.get(out_trade_no)
            if trade is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            answer: dict[str, Any] = {
                "mchid": MCHID,
                "appid": APPID,
                "out_trade_no": out_trade_no,
                "trade_state": trade["state"],
            }
            if trade["state"] == "SUCCESS":
                answer["transaction_id"] = "4200000000"
                answer["amount"] = {"total": trade["amount"]}
            return 200, answer
        if method == "POST" and path.endswith("/close"):
            self.trades[path.split("/")[-2]]["state"] = "CLOSED"
            return 204, None
        return 404, {"code": "NOT_FOUND"}

    def signed_headers(self, body: bytes) -> dict[str, str]:
        return self.platform.sign(body, timestamp=int(time.time()))


@pytest.fixture
def gateway() -> Iterator[tuple[FakeWeChatPay, str]]:
    fake = FakeWeChatPay()

    class Handler(BaseHTTPRequestHandler):
        def _respond(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, answer = fake.answer(method, self.path, json.loads(raw) if raw else None)
            payload = json.dumps(answer).encode() if answer is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in fake.signed_headers(payload).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._respond("GET")

        def do_POST(self) -> None:
            self._respond("POST")

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def provider(gateway: tuple[FakeWeChatPay, str], platform_services: PlatformServices) -> WeChatPayProvider:
    fake, url = gateway
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform_public = fake.platform.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    wechat = WeChatPayProvider(
        mchid=MCHID,
        appid=APPID,
        cert_serial_no="444F4864EA9B34415",
        private_key_pem=merchant_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        apiv3_key=fake.platform.apiv3_key,
        platform_public_key_pem=platform_public.decode(),
        platform_public_key_id=PUBLIC_KEY_ID,
        notify_url="https://platform.example.cn/v1/payments/notify/wechatpay",
        gateway=url,
        clock=platform_services.clock,
    )
    payments.register_provider(platform_services, wechat)
    # Keep the sandbox too, as in a deployment that offers both.
    from seal_platform.payments.sandbox import SandboxProvider

    payments.register_provider(platform_services, SandboxProvider(platform_services))
    return wechat


async def _awaiting(api: httpx.AsyncClient, make_account: MakeAccount) -> tuple[Any, str]:
    account = await make_account(realname=True)
    order = await new_enterprise_order(api, account)
    await submit(api, account, order["id"])
    return account, order["id"]


async def test_native_payment_returns_the_code_url_and_a_signed_notification_pays_the_order(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    provider: WeChatPayProvider,
    gateway: tuple[FakeWeChatPay, str],
    platform_services: PlatformServices,
) -> None:
    fake, _url = gateway
    account, order_id = await _awaiting(api, make_account)
    started = await api.post(
        f"/v1/orders/{order_id}/payments", json={"provider": "wechatpay"}, headers=account.headers
    )
    assert started.status_code == 201, started.text
    payment = started.json()
    assert payment["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", "/v3/pay/transactions/native")
    assert body is not None
    assert body["amount"]["total"] == 30000
    assert body["notify_url"] == "https://platform.example.cn/v1/payments/notify/wechatpay"

    resource = transaction_resource(
        mchid=MCHID,
        appid=APPID,
        out_trade_no=payment["id"],
        amount_fen=30000,
        transaction_id="4200000000000000000009",
        success_time=platform_services.clock.now(),
    )
    headers, notification = fake.platform.notification(resource, now=platform_services.clock.now())
    response = await api.post("/v1/payments/notify/wechatpay", content=notification, headers=headers)
    assert response.status_code == 204, response.text
    order = (await api.get(f"/v1/orders/{order_id}", headers=account.headers)).json()
    assert order["status"] == "under_review"


async def test_jsapi_payment_returns_signed_bridge_parameters(
    api: httpx.AsyncClient, make_account: MakeAccount, provider: WeChatPayProvider
) -> None:
    account, order_id = await _awaiting(api, make_account)
    started = await api.post(
        f"/v1/orders/{order_id}/payments",
        json={"provider": "wechatpay", "channel": "jsapi", "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        headers=account.headers,
    )
    assert started.status_code == 201, started.text
    params = started.json()["jsapi_params"]
    assert params["package"].startswith("prepay_id=wx")
    assert params["appId"] == APPID
    assert params["signType"] == "RSA"
    assert base64.b64decode(params["paySign"])


async def test_jsapi_without_openid_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, provider: WeChatPayProvider
) -> None:
    account, order_id = await _awaiting(api, make_account)
    response = await api.post(
        f"/v1/orders/{order_id}/payments",
        json={"provider": "wechatpay", "channel": "jsapi"},
        headers=account.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "openid_required"


async def test_answers_not_signed_by_the_platform_key_are_an_upstream_error(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    provider: WeChatPayProvider,
    gateway: tuple[FakeWeChatPay, str],
) -> None:
    fake, _url = gateway
    # The gateway's answers are now signed by an impostor.
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def forged(body: bytes) -> dict[str, str]:
        headers = fake.platform.sign(body, timestamp=int(time.time()))
        signature = impostor.sign(
            f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + body + b"\n",
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        headers["Wechatpay-Signature"] = base64.b64encode(signature).decode()
        return headers

    fake.signed_headers = forged  # type: ignore[method-assign]
    account, order_id = await _awaiting(api, make_account)
    response = await api.post(
        f"/v1/orders/{order_id}/payments", json={"provider": "wechatpay"}, headers=account.headers
    )
    assert response.status_code == 502
    assert response.json()["code"] == "payment_provider_error"


async def test_query_reports_a_paid_trade_and_an_unknown_one(
    provider: WeChatPayProvider, gateway: tuple[FakeWeChatPay, str]
) -> None:
    fake, _url = gateway
    fake.trades["a" * 32] = {"state": "SUCCESS", "amount": 30000}
    trade = await provider.query_order("a" * 32)
    assert trade is not None
    assert trade.trade_state == "SUCCESS"
    assert trade.amount_fen == 30000
    assert await provider.query_order("b" * 32) is None
    await provider.close_order("a" * 32)
    assert fake.trades["a" * 32]["state"] == "CLOSED"
