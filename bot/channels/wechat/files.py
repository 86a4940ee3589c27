"""Expiring, signed download links for files sent to WeChat users (an official account cannot
send a PDF as a message). The link names the media id, the expiry and the file name, and an
HMAC over the three; nothing else is served."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.engine.messages import FileRef


@dataclass(frozen=True)
class LinkedFile:
    media_id: str
    filename: str
    content_type: str


class FileLinks:
    def __init__(self, secret: bytes, base_url: str, ttl: timedelta) -> None:
        self._secret = secret
        self.base_url = base_url
        self.ttl = ttl

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()[:32]

    def url(self, file: FileRef, now: datetime) -> str:
        payload = json.dumps(
            [file.media_id, int((now + self.ttl).timestamp()), file.filename, file.content_type],
            separators=(",", ":"),
        ).encode()
        token = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{self.base_url}/wechat/files/{token}.{self._mac(payload)}"

    def open(self, token: str, now: datetime) -> LinkedFile | None:
        """The file a link names, or None if forged, malformed or expired."""
        encoded, _, mac = token.rpartition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            return None
        if not hmac.compare_digest(self._mac(payload), mac):
            return None
        try:
            media_id, expires, filename, content_type = json.loads(payload)
        except (ValueError, TypeError):
            return None
        if int(expires) < now.timestamp():
            return None
        return LinkedFile(str(media_id), str(filename), str(content_type))
