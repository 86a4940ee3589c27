"""QR codes for payment links (WeChat Pay Native ``code_url`` or the sandbox payment page)."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import qrcode
from qrcode.constants import ERROR_CORRECT_M

from seal_platform.errors import InvalidInput

_ALLOWED_SCHEMES = frozenset({"https", "http", "weixin"})
# Version 40 at level M holds 2331 bytes; payment links are far shorter.
MAX_URL_LENGTH = 2000


def payment_qr_png(url: str, *, box_size: int = 8, border: int = 4) -> bytes:
    """A black-on-white PNG of ``url`` (error correction M, quiet zone of ``border`` modules)."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"a payment link is at most {MAX_URL_LENGTH} characters", length=len(url))
    parts = urlsplit(url)
    if parts.scheme not in _ALLOWED_SCHEMES or not (parts.netloc or parts.path):
        raise InvalidInput("a payment link must be an http(s) or weixin:// URL", url=url)
    if not 1 <= box_size <= 40 or not 0 <= border <= 16:
        raise InvalidInput("box size must be 1 to 40 pixels and the border 0 to 16 modules")
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border)
    code.add_data(url)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
