"""WeChat Pay v3 signatures checked against an implementation that is not ours: ``wechatpayv3``.

The other payment tests sign notifications with the sandbox's signer, which shares
``signed_message`` with the verifier under test: a wrong message layout would sign and verify
alike. Here the signing and the decryption are done by ``wechatpayv3.utils``, which builds the
documented layout itself (``timestamp\\nnonce\\nbody\\n``; JSAPI ``appId\\ntimeStamp\\nnonceStr\\n
package\\n``), so our side must agree with a third party's reading of WeChat Pay's documentation.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3.utils import aes_decrypt, rsa_sign, rsa_verify

from seal_platform.payments.base import NotificationKeys
from seal_platform.payments.notifications import NotificationRejected, verify_notification
from seal_platform.payments.sandbox import SandboxSigner
from seal_platform.payments.wechatpay import WeChatPayProvider

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SERIAL = "PUB_KEY_ID_0114232134912410000000000000"
APIV3_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"  # 32 characters, as the merchant platform issues


def _pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_public(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _reference_notification(platform_key: rsa.RSAPrivateKey, timestamp: int) -> tuple[dict[str, str], bytes]:
    """A TRANSACTION.SUCCESS notification laid out from the documentation, signed by wechatpayv3."""
    resource = {
        "mchid": "1230000109",
        "appid": "wxd678efh567hg6787",
        "out_trade_no": "1217752501201407033233368018",
        "transaction_id": "4200000000000000000009",
        "trade_state": "SUCCESS",
        "amount": {"total": 30000, "payer_total": 30000, "currency": "CNY", "payer_currency": "CNY"},
        "success_time": "2026-11-30T16:00:00+08:00",
    }
    nonce = "fdasflkja484w"
    ciphertext = AESGCM(APIV3_KEY.encode()).encrypt(
        nonce.encode(), json.dumps(resource).encode(), b"transaction"
    )
    envelope = {
        "id": "EV-2018022511223320873",
        "create_time": "2026-11-30T16:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": "transaction",
            "nonce": nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    header_nonce = secrets.token_hex(16)
    # wechatpayv3 signs whatever string it is given; the layout is the documented one.
    sign_str = f"{timestamp}\n{header_nonce}\n{body.decode()}\n"
    headers = {
        "Wechatpay-Serial": SERIAL,
        "Wechatpay-Signature": rsa_sign(platform_key, sign_str),
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": header_nonce,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return headers, body


def _keys(platform_key: rsa.RSAPrivateKey) -> NotificationKeys:
    return NotificationKeys(public_keys={SERIAL: platform_key.public_key()}, apiv3_key=APIV3_KEY.encode())


def test_a_notification_signed_by_wechatpayv3_is_verified_and_decrypted() -> None:
    platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers, body = _reference_notification(platform_key, int(NOW.timestamp()))
    verified = verify_notification(_keys(platform_key), headers, body, now=NOW, window_seconds=300)
    assert verified.id == "EV-2018022511223320873"
    assert verified.event_type == "TRANSACTION.SUCCESS"
    assert verified.resource["out_trade_no"] == "1217752501201407033233368018"
    assert verified.resource["amount"]["total"] == 30000


def test_a_reference_notification_with_one_changed_body_byte_is_refused() -> None:
    platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers, body = _reference_notification(platform_key, int(NOW.timestamp()))
    tampered = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESZ")
    with pytest.raises(NotificationRejected) as refused:
        verify_notification(_keys(platform_key), headers, tampered, now=NOW, window_seconds=300)
    assert refused.value.details["reason"] == "signature"


def test_the_sandbox_signer_produces_what_wechatpayv3_accepts() -> None:
    """The fake gateway and the sandbox sign the way WeChat Pay does, by a third party's check."""
    signer = SandboxSigner()
    body = b'{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}'
    headers = signer.sign(body, timestamp=int(NOW.timestamp()))
    assert rsa_verify(
        headers["Wechatpay-Timestamp"],
        headers["Wechatpay-Nonce"],
        body.decode(),
        headers["Wechatpay-Signature"],
        signer.private_key.public_key(),
    )
    encrypted = signer.encrypt_resource({"trade_state": "SUCCESS"})
    plaintext = aes_decrypt(
        encrypted["nonce"], encrypted["ciphertext"], encrypted["associated_data"], signer.apiv3_key
    )
    assert json.loads(plaintext) == {"trade_state": "SUCCESS"}


async def test_jsapi_pay_sign_verifies_with_the_merchant_key_over_the_documented_string() -> None:
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider = WeChatPayProvider(
        mchid="1230000109",
        appid="wxd678efh567hg6787",
        cert_serial_no="444F4864EA9B34415",
        private_key_pem=_pem_private(merchant_key),
        apiv3_key=APIV3_KEY,
        platform_public_key_pem=_pem_public(platform_key),
        platform_public_key_id=SERIAL,
        notify_url="https://platform.example.cn/v1/payments/notify/wechatpay",
        gateway="http://127.0.0.1:9",
    )
    params = await provider._jsapi_params("wx201410272009395522657a690389285100")
    assert params["package"] == "prepay_id=wx201410272009395522657a690389285100"
    assert params["signType"] == "RSA"
    # What WeChat's JSAPI (wx.requestPayment) checks: RSA-SHA256 with the merchant key over
    # appId, timeStamp, nonceStr and package, each followed by a newline.
    expected = rsa_sign(
        merchant_key,
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n",
    )
    # PKCS#1 v1.5 signatures are deterministic: the same key and string give the same bytes.
    assert params["paySign"] == expected
