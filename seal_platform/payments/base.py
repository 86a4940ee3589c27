"""What the platform needs from a payment provider, and what a provider tells it.

Two providers implement ``PaymentProvider``: the sandbox (embedded default) and WeChat Pay API
v3. Both deliver notifications in the WeChat Pay v3 format, so one verification path
(``notifications.py``) serves both: the sandbox's notifications are not trusted more than a
real provider's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey


class PayChannel(StrEnum):
    # A URL the payer opens or scans (WeChat Native code_url, the sandbox pay page).
    NATIVE = "native"
    # Inside WeChat: the JSAPI parameters for WeixinJSBridge, needs the payer's openid.
    JSAPI = "jsapi"


@dataclass(frozen=True)
class PaymentRequest:
    out_trade_no: str
    amount_fen: int
    description: str
    channel: PayChannel = PayChannel.NATIVE
    payer_openid: str | None = None


@dataclass(frozen=True)
class PaymentStart:
    """How the payer pays: scan/open ``code_url``, or call JSAPI with ``jsapi_params``."""

    code_url: str | None = None
    jsapi_params: dict[str, str] | None = None


class TradeState(StrEnum):
    SUCCESS = "SUCCESS"
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    REFUND = "REFUND"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class ProviderTransaction:
    """A transaction as the provider reports it (decrypted notification resource or query)."""

    mchid: str
    appid: str
    out_trade_no: str
    transaction_id: str | None
    trade_state: TradeState
    amount_fen: int
    success_time: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotificationKeys:
    """What verifying and decrypting a v3 notification takes."""

    # Wechatpay-Serial -> RSA public key of the provider's platform certificate / public key id.
    public_keys: dict[str, RSAPublicKey]
    apiv3_key: bytes


class PaymentProvider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def mchid(self) -> str: ...

    @property
    def appid(self) -> str: ...

    def notification_keys(self) -> NotificationKeys: ...

    async def create_payment(self, request: PaymentRequest) -> PaymentStart: ...

    async def query_order(self, out_trade_no: str) -> ProviderTransaction | None:
        """The provider's view of the trade; ``None`` if it does not know the trade."""
        ...

    async def close_order(self, out_trade_no: str) -> None: ...
