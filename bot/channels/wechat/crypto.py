"""Safe mode (安全模式): wechatpy's AES for the payload, our own constant-time signature check
in front of it (wechatpy compares with ``!=`` and decrypts after parsing the outer XML)."""

from __future__ import annotations

from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException

from bot.channels.wechat.signature import sign, verify
from bot.errors import RequestRejected


class MessageCipher:
    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("WECHAT_ENCODING_AES_KEY must be 43 characters")
        self._crypto = WeChatCrypto(token, encoding_aes_key, appid)
        self._token = token
        self._appid = appid

    def decrypt(self, encrypted: str, msg_signature: str | None, timestamp: str, nonce: str) -> bytes:
        verify(sign(self._token, timestamp, nonce, encrypted), msg_signature)
        try:
            plain = PrpCrypto(self._crypto.key).decrypt(encrypted, self._appid)
        except InvalidAppIdException as exc:
            raise RequestRejected("message for another account", status=403) from exc
        except Exception as exc:  # padding, base64 and AES errors all mean "not ours"
            raise RequestRejected("undecryptable message", status=400) from exc
        return plain if isinstance(plain, bytes) else str(plain).encode()

    def encrypt(self, xml: str, nonce: str, timestamp: str) -> str:
        return str(self._crypto.encrypt_message(xml, nonce, timestamp))
