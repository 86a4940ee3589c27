"""The sandbox payment provider of the embedded default: a fake WeChat Pay inside the platform.

It plays both sides honestly. As the merchant's provider it hands out a pay URL on the platform
(``/pay/{payment_id}``). As the "WeChat Pay" behind that page it records the trade when the
payer presses the button and then sends the platform a notification exactly as WeChat Pay v3
would: the body's resource encrypted with AEAD_AES_256_GCM under the API v3 key, signed
SHA256withRSA with its own locally generated "platform" key. The notification then goes through
``notifications.process_notification`` like a real one, so the sandbox exercises the real
verification path rather than a shortcut.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.errors import NotFound, RuleViolation
from seal_platform.payments import Payment
from seal_platform.payments.base import (
    NotificationKeys,
    PaymentRequest,
    PaymentStart,
    ProviderTransaction,
    TradeState,
)
from seal_platform.payments.notifications import signed_message
from seal_platform.services import PlatformServices

SANDBOX_MCHID = "1900000109"
SANDBOX_APPID = "wxsandbox00000000"

SignedNotification = tuple[dict[str, str], bytes]


class SandboxTrade(Base):
    """The sandbox "WeChat Pay" side's own ledger: what its order query answers from."""

    __tablename__ = "sandbox_trades"

    out_trade_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    trade_state: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(Integer)
    transaction_id: Mapped[str | None] = mapped_column(String(64), default=None)
    success_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class SandboxSigner:
    """The sandbox's "WeChat Pay platform": its key pair and its API v3 key."""

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.serial = "PUB_KEY_ID_" + secrets.token_hex(12).upper()
        # A v3 key is a 32-character string; its UTF-8 bytes are the AES-256 key.
        self.apiv3_key = secrets.token_hex(16)

    def encrypt_resource(
        self, resource: dict[str, Any], *, associated_data: str = "transaction"
    ) -> dict[str, str]:
        nonce = secrets.token_hex(6)
        ciphertext = AESGCM(self.apiv3_key.encode()).encrypt(
            nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), associated_data.encode()
        )
        return {
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": associated_data,
            "original_type": "transaction",
            "nonce": nonce,
        }

    def sign(self, body: bytes, *, timestamp: int, nonce: str | None = None) -> dict[str, str]:
        nonce = nonce or secrets.token_hex(16)
        signature = self.private_key.sign(
            signed_message(str(timestamp), nonce, body), padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            "Wechatpay-Serial": self.serial,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Timestamp": str(timestamp),
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    def notification(
        self, resource: dict[str, Any], *, now: datetime, notification_id: str | None = None
    ) -> SignedNotification:
        """A complete TRANSACTION.SUCCESS notification: headers and body as WeChat sends them."""
        envelope = {
            "id": notification_id or str(uuid.uuid4()),
            "create_time": now.isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": self.encrypt_resource(resource),
        }
        body = json.dumps(envelope, ensure_ascii=False).encode()
        return self.sign(body, timestamp=int(now.timestamp())), body


def transaction_resource(
    *, mchid: str, appid: str, out_trade_no: str, amount_fen: int, transaction_id: str, success_time: datetime
) -> dict[str, Any]:
    """The decrypted resource of a successful v3 transaction notification."""
    return {
        "mchid": mchid,
        "appid": appid,
        "out_trade_no": out_trade_no,
        "transaction_id": transaction_id,
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": success_time.isoformat(timespec="seconds"),
        "payer": {"openid": "sandbox-payer"},
        "amount": {
            "total": amount_fen,
            "payer_total": amount_fen,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }


class SandboxProvider:
    name = "sandbox"
    mchid = SANDBOX_MCHID
    appid = SANDBOX_APPID

    def __init__(self, services: PlatformServices) -> None:
        self._services = services
        self.signer = SandboxSigner()

    def notification_keys(self) -> NotificationKeys:
        return NotificationKeys(
            public_keys={self.signer.serial: self.signer.private_key.public_key()},
            apiv3_key=self.signer.apiv3_key.encode(),
        )

    def pay_url(self, out_trade_no: str) -> str:
        return f"{self._services.settings.public_base_url.rstrip('/')}/pay/{out_trade_no}"

    async def create_payment(self, request: PaymentRequest) -> PaymentStart:
        # Nothing to record yet: the payment row (written by the caller's transaction) is the
        # request this fake gateway received; its own ledger starts when the payer acts.
        return PaymentStart(code_url=self.pay_url(request.out_trade_no))

    async def query_order(self, out_trade_no: str) -> ProviderTransaction | None:
        async with self._services.db.session() as session:
            trade = await session.get(SandboxTrade, out_trade_no)
            if trade is None:
                payment = await session.get(Payment, out_trade_no)
                if payment is None or payment.provider != self.name:
                    return None
                trade = SandboxTrade(
                    out_trade_no=out_trade_no,
                    trade_state=TradeState.NOTPAY.value,
                    amount_fen=payment.amount_fen,
                )
            return ProviderTransaction(
                mchid=self.mchid,
                appid=self.appid,
                out_trade_no=trade.out_trade_no,
                transaction_id=trade.transaction_id,
                trade_state=TradeState(trade.trade_state),
                amount_fen=trade.amount_fen,
                success_time=trade.success_time,
            )

    async def close_order(self, out_trade_no: str) -> None:
        async with self._services.db.session() as session:
            trade = await session.get(SandboxTrade, out_trade_no)
            if trade is None:
                payment = await session.get(Payment, out_trade_no)
                if payment is None:
                    return
                session.add(
                    SandboxTrade(
                        out_trade_no=out_trade_no,
                        trade_state=TradeState.CLOSED.value,
                        amount_fen=payment.amount_fen,
                    )
                )
            elif trade.trade_state == TradeState.NOTPAY:
                trade.trade_state = TradeState.CLOSED.value

    async def pay(self, out_trade_no: str) -> SignedNotification:
        """The payer pressed "pay": record the trade and return the notification to deliver."""
        now = self._services.clock.now()
        async with self._services.db.session() as session:
            payment = await session.get(Payment, out_trade_no)
            if payment is None or payment.provider != self.name:
                raise NotFound("payment not found", payment_id=out_trade_no)
            trade = await session.get(SandboxTrade, out_trade_no)
            if trade is None:
                trade = SandboxTrade(
                    out_trade_no=out_trade_no,
                    trade_state=TradeState.NOTPAY.value,
                    amount_fen=payment.amount_fen,
                )
                session.add(trade)
            if trade.trade_state == TradeState.CLOSED:
                raise RuleViolation("this payment was closed", code="payment_closed")
            if trade.trade_state == TradeState.NOTPAY:
                trade.trade_state = TradeState.SUCCESS.value
                trade.transaction_id = "4200" + secrets.token_hex(12)
                trade.success_time = now
            resource = transaction_resource(
                mchid=self.mchid,
                appid=self.appid,
                out_trade_no=trade.out_trade_no,
                amount_fen=trade.amount_fen,
                transaction_id=trade.transaction_id or "",
                success_time=trade.success_time or now,
            )
        return self.signer.notification(resource, now=now)
