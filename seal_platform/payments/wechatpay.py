"""WeChat Pay API v3 through ``wechatpayv3``: Native (QR ``code_url``) and JSAPI (openid).

``wechatpayv3`` is synchronous (requests), so every call runs in a thread. It is used in
"platform public key" mode (``public_key`` + ``public_key_id``), which needs no certificate
download at start. Notifications are NOT verified with its ``callback()``: that accepts any
timestamp; they go through ``notifications.verify_notification`` with the keys given here.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from wechatpayv3 import WeChatPay, WeChatPayType

from seal_platform.clock import Clock, SystemClock
from seal_platform.errors import UpstreamError
from seal_platform.payments.base import (
    NotificationKeys,
    PayChannel,
    PaymentRequest,
    PaymentStart,
    ProviderTransaction,
)
from seal_platform.payments.notifications import transaction_from_resource
from seal_platform.settings import PlatformSettings


class WeChatPayProvider:
    name = "wechatpay"

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        cert_serial_no: str,
        private_key_pem: str,
        apiv3_key: str,
        platform_public_key_pem: str,
        platform_public_key_id: str,
        notify_url: str,
        gateway: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.mchid = mchid
        self.appid = appid
        self._apiv3_key = apiv3_key
        self._clock = clock or SystemClock()
        public_key = load_pem_public_key(platform_public_key_pem.encode())
        if not isinstance(public_key, RSAPublicKey):
            raise ValueError("the WeChat Pay platform public key must be RSA")
        self._public_key = public_key
        self._public_key_id = platform_public_key_id
        try:
            self._client = WeChatPay(
                wechatpay_type=WeChatPayType.NATIVE,
                mchid=mchid,
                private_key=private_key_pem,
                cert_serial_no=cert_serial_no,
                appid=appid,
                apiv3_key=apiv3_key,
                notify_url=notify_url,
                public_key=platform_public_key_pem,
                public_key_id=platform_public_key_id,
                timeout=(5, 15),
            )
        except Exception as exc:
            raise ValueError(f"WeChat Pay configuration rejected: {exc}") from exc
        if gateway is not None:
            # A fake server in tests; the SDK has no public option for its base URL.
            self._client._core._gate_way = gateway.rstrip("/")

    @classmethod
    def from_settings(cls, settings: PlatformSettings, clock: Clock | None = None) -> WeChatPayProvider:
        return cls(
            mchid=settings.wechatpay_mchid,
            appid=settings.wechatpay_appid,
            cert_serial_no=settings.wechatpay_cert_serial_no,
            private_key_pem=settings.wechatpay_private_key.get_secret_value(),
            apiv3_key=settings.wechatpay_apiv3_key.get_secret_value(),
            platform_public_key_pem=settings.wechatpay_public_key,
            platform_public_key_id=settings.wechatpay_public_key_id,
            notify_url=f"{settings.public_base_url.rstrip('/')}/v1/payments/notify/wechatpay",
            gateway=settings.wechatpay_gateway or None,
            clock=clock,
        )

    def notification_keys(self) -> NotificationKeys:
        return NotificationKeys(
            public_keys={self._public_key_id: self._public_key}, apiv3_key=self._apiv3_key.encode()
        )

    async def _call(self, what: str, fn: Any, /, **kwargs: Any) -> tuple[int, Any]:
        try:
            code, message = await asyncio.to_thread(fn, **kwargs)
        except Exception as exc:
            # The SDK raises bare Exception for bad responses and signature failures alike.
            raise UpstreamError(f"WeChat Pay {what} failed", code="payment_provider_error") from exc
        return int(code), message

    async def create_payment(self, request: PaymentRequest) -> PaymentStart:
        amount = {"total": request.amount_fen, "currency": "CNY"}
        if request.channel == PayChannel.JSAPI:
            code, message = await self._call(
                "JSAPI order",
                self._client.pay,
                description=request.description,
                out_trade_no=request.out_trade_no,
                amount=amount,
                payer={"openid": request.payer_openid},
                pay_type=WeChatPayType.JSAPI,
            )
            prepay_id = self._field(code, message, "prepay_id")
            return PaymentStart(jsapi_params=await self._jsapi_params(prepay_id))
        code, message = await self._call(
            "Native order",
            self._client.pay,
            description=request.description,
            out_trade_no=request.out_trade_no,
            amount=amount,
            pay_type=WeChatPayType.NATIVE,
        )
        return PaymentStart(code_url=self._field(code, message, "code_url"))

    @staticmethod
    def _field(code: int, message: Any, name: str) -> str:
        try:
            value = json.loads(message)[name] if 200 <= code < 300 else None
        except (ValueError, KeyError, TypeError):
            value = None
        if not isinstance(value, str):
            raise UpstreamError("WeChat Pay refused the order", code="payment_provider_error", status=code)
        return value

    async def _jsapi_params(self, prepay_id: str) -> dict[str, str]:
        timestamp = str(int(self._clock.now().timestamp()))
        nonce = secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        signature = await asyncio.to_thread(self._client.sign, [self.appid, timestamp, nonce, package])
        return {
            "appId": self.appid,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": str(signature),
        }

    async def query_order(self, out_trade_no: str) -> ProviderTransaction | None:
        code, message = await self._call("order query", self._client.query, out_trade_no=out_trade_no)
        if code == 404:
            return None
        if not 200 <= code < 300:
            raise UpstreamError("WeChat Pay order query failed", code="payment_provider_error", status=code)
        try:
            resource = json.loads(message)
        except (ValueError, TypeError) as exc:
            raise UpstreamError("WeChat Pay answered unreadably", code="payment_provider_error") from exc
        if "amount" not in resource:
            # An unpaid trade carries no amount; our record's amount is what would be charged.
            resource["amount"] = {"total": -1}
        return transaction_from_resource(resource)

    async def close_order(self, out_trade_no: str) -> None:
        code, _message = await self._call("order close", self._client.close, out_trade_no=out_trade_no)
        if not 200 <= code < 300:
            raise UpstreamError("WeChat Pay order close failed", code="payment_provider_error", status=code)
