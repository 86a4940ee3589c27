"""Safe mode (安全模式) against WeChat's own published example, not against our own encryptor.

The vector is the one of Tencent's message encryption sample ``Sample.py`` of the
WXBizMsgCrypt package (author jonyqin, 2014-09-11, linked from the Official Account docs'
"消息加解密说明"; a copy: github.com/charlesXu86/Chatbot_CN, Chatbot_Web/impl/weixin/Sample.py).
The message was sent in compatibility mode, so its plaintext fields sit beside ``Encrypt`` in
the same XML: that is the known plaintext the decryption must give back.

The other direction is checked with the algorithm as the documentation states it, written out
here with ``hashlib`` and ``cryptography`` (SHA-1 over the sorted strings; AES-256-CBC with the
key's first 16 bytes as IV, PKCS#7 to 32 bytes, 16 random bytes + length + message + appid).
"""

from __future__ import annotations

import base64
import hashlib
import struct
import xml.etree.ElementTree as ET

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.channels.wechat.crypto import MessageCipher
from bot.errors import RequestRejected

ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TOKEN = "spamtest"
APPID = "wx2c2769f8efd9abc2"
NONCE = "1320562132"
TIMESTAMP = "1409735669"
MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
FROM_XML = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>"
    "<CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId>"
    "<Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6"
    "F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVt"
    "icbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77T"
    "szTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehV"
    "sNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>"
)
PLAIN_FIELDS = ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId")


def fields(xml: bytes | str, names: tuple[str, ...]) -> dict[str, str | None]:
    root = ET.fromstring(xml)  # noqa: S314 - a fixed vector and our own output
    return {name: root.findtext(name) for name in names}


def cipher() -> MessageCipher:
    return MessageCipher(TOKEN, ENCODING_AES_KEY, APPID)


def test_the_documented_message_decrypts_to_its_known_plaintext() -> None:
    encrypted = fields(FROM_XML, ("Encrypt",))["Encrypt"]
    assert encrypted is not None

    plain = cipher().decrypt(encrypted, MSG_SIGNATURE, TIMESTAMP, NONCE)

    assert fields(plain, PLAIN_FIELDS) == fields(FROM_XML, PLAIN_FIELDS)


def test_the_documented_message_with_one_signature_digit_changed_is_refused() -> None:
    encrypted = fields(FROM_XML, ("Encrypt",))["Encrypt"]
    assert encrypted is not None
    forged = ("6" if MSG_SIGNATURE[0] != "6" else "7") + MSG_SIGNATURE[1:]

    with pytest.raises(RequestRejected) as refused:
        cipher().decrypt(encrypted, forged, TIMESTAMP, NONCE)

    assert refused.value.status == 403


def test_the_documented_message_is_refused_for_another_appid() -> None:
    encrypted = fields(FROM_XML, ("Encrypt",))["Encrypt"]
    assert encrypted is not None

    with pytest.raises(RequestRejected) as refused:
        MessageCipher(TOKEN, ENCODING_AES_KEY, "wx0000000000000000").decrypt(
            encrypted, MSG_SIGNATURE, TIMESTAMP, NONCE
        )

    assert refused.value.status == 403


def test_our_encrypted_reply_verifies_and_decrypts_by_the_documented_algorithm() -> None:
    reply = "<xml><Content><![CDATA[您好 hello]]></Content></xml>"

    out = fields(cipher().encrypt(reply, NONCE, TIMESTAMP), ("Encrypt", "MsgSignature", "TimeStamp", "Nonce"))

    encrypted = out["Encrypt"]
    assert encrypted is not None
    assert (out["TimeStamp"], out["Nonce"]) == (TIMESTAMP, NONCE)
    expected = hashlib.sha1("".join(sorted([TOKEN, TIMESTAMP, NONCE, encrypted])).encode()).hexdigest()  # noqa: S324
    assert out["MsgSignature"] == expected
    key = base64.b64decode(ENCODING_AES_KEY + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    pad = padded[-1]
    assert 1 <= pad <= 32
    assert padded[-pad:] == bytes([pad]) * pad
    content = padded[16:-pad]
    (length,) = struct.unpack(">I", content[:4])
    assert content[4 : 4 + length].decode() == reply
    assert content[4 + length :].decode() == APPID
