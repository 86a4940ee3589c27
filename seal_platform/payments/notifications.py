"""The one path every payment notification takes, real or sandbox (WeChat Pay API v3 format).

1. verify SHA256withRSA over ``timestamp\\nnonce\\nbody\\n`` with the provider's platform key,
2. refuse a timestamp outside the window (``wechatpayv3`` itself accepts one from 2001),
3. skip a notification id already processed (WeChat retries for about a day),
4. decrypt the AEAD_AES_256_GCM resource with the API v3 key,
5. check merchant, app, amount and out_trade_no against our payment, then move the order.

Steps 3-5 run in one transaction, so a notification is marked processed exactly when its
effect is committed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import IntegrityError

from seal_platform.errors import PlatformError
from seal_platform.payments import ProcessedNotification, apply_transaction, get_provider
from seal_platform.payments.base import NotificationKeys, ProviderTransaction, TradeState
from seal_platform.services import PlatformServices

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
SUCCESS_EVENT = "TRANSACTION.SUCCESS"


class NotificationRejected(PlatformError):
    """Not a notification we accept: forged, stale, unreadable or not about our trade."""

    status_code = 400
    code = "notification_rejected"


@dataclass(frozen=True)
class VerifiedNotification:
    id: str
    event_type: str
    resource: dict[str, Any]


def signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"


def verify_notification(
    keys: NotificationKeys,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    window_seconds: int,
) -> VerifiedNotification:
    """Check signature and freshness, then decrypt; raises ``NotificationRejected``."""
    lower = {k.lower(): v for k, v in headers.items()}
    signature_type = lower.get("wechatpay-signature-type", SIGNATURE_TYPE)
    if signature_type != SIGNATURE_TYPE:
        raise NotificationRejected("unsupported signature type", reason="signature_type")
    try:
        serial = lower["wechatpay-serial"]
        signature = base64.b64decode(lower["wechatpay-signature"], validate=True)
        timestamp = lower["wechatpay-timestamp"]
        nonce = lower["wechatpay-nonce"]
    except (KeyError, binascii.Error) as exc:
        raise NotificationRejected("missing or malformed signature headers", reason="headers") from exc
    public_key = keys.public_keys.get(serial)
    if public_key is None:
        raise NotificationRejected("unknown platform key serial", reason="serial")
    try:
        public_key.verify(
            signature, signed_message(timestamp, nonce, body), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature as exc:
        raise NotificationRejected("bad signature", reason="signature") from exc
    # Checked after the signature (the timestamp is signed) and before anything is read.
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > window_seconds:
        raise NotificationRejected("notification timestamp outside the accepted window", reason="stale")
    try:
        envelope = json.loads(body)
        notification_id = str(envelope["id"])
        event_type = str(envelope["event_type"])
        resource = envelope["resource"]
        if envelope.get("resource_type") != "encrypt-resource" or resource["algorithm"] != "AEAD_AES_256_GCM":
            raise NotificationRejected("unsupported resource encryption", reason="algorithm")
        plaintext = AESGCM(keys.apiv3_key).decrypt(
            str(resource["nonce"]).encode(),
            base64.b64decode(resource["ciphertext"]),
            str(resource.get("associated_data") or "").encode(),
        )
        decrypted = json.loads(plaintext)
    except NotificationRejected:
        raise
    except (ValueError, KeyError, TypeError, InvalidTag, binascii.Error) as exc:
        raise NotificationRejected("unreadable notification", reason="payload") from exc
    if not isinstance(decrypted, dict):
        raise NotificationRejected("unreadable notification", reason="payload")
    return VerifiedNotification(id=notification_id, event_type=event_type, resource=decrypted)


def transaction_from_resource(resource: Mapping[str, Any]) -> ProviderTransaction:
    """A v3 transaction object (notification resource or query answer) as our dataclass."""
    try:
        success_time = resource.get("success_time")
        return ProviderTransaction(
            mchid=str(resource["mchid"]),
            appid=str(resource["appid"]),
            out_trade_no=str(resource["out_trade_no"]),
            transaction_id=resource.get("transaction_id"),
            trade_state=TradeState(resource["trade_state"]),
            amount_fen=int(resource["amount"]["total"]),
            success_time=datetime.fromisoformat(success_time) if success_time else None,
            raw=dict(resource),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise NotificationRejected("transaction lacks required fields", reason="payload") from exc


async def process_notification(
    services: PlatformServices, provider_name: str, headers: Mapping[str, str], body: bytes
) -> bool:
    """Act on one notification; ``False`` if it was a replay (acknowledged, no effect)."""
    provider = get_provider(services, provider_name)
    verified = verify_notification(
        provider.notification_keys(),
        headers,
        body,
        now=services.clock.now(),
        window_seconds=services.settings.payment_notification_window_seconds,
    )
    try:
        async with services.db.session() as session:
            if await session.get(ProcessedNotification, (provider.name, verified.id)) is not None:
                return False
            out_trade_no = verified.resource.get("out_trade_no")
            session.add(
                ProcessedNotification(
                    provider=provider.name,
                    notification_id=verified.id,
                    out_trade_no=str(out_trade_no) if out_trade_no else None,
                    received_at=services.clock.now(),
                )
            )
            if verified.event_type == SUCCESS_EVENT:
                trade = transaction_from_resource(verified.resource)
                await apply_transaction(session, services, provider, trade, actor=f"provider:{provider.name}")
    except IntegrityError:
        # The same notification, delivered twice at once: the other delivery recorded it.
        return False
    return True
