"""Parsing XML from the Internet: size-capped, UTF-8 only, no DTD, no entities.

xmltodict >= 1.0 already refuses entity declarations; the explicit DOCTYPE check keeps that
true whatever version is installed, and an XML body is only parsed after its signature passed.
"""

from __future__ import annotations

import re
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from bot.errors import RequestRejected

_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


def parse_xml(body: bytes, *, limit: int) -> dict[str, str]:
    """The children of ``<xml>`` as text (nested elements are kept as dicts)."""
    if len(body) > limit:
        raise RequestRejected("body too large", status=413)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejected("body is not UTF-8", status=400) from exc
    if _DTD.search(body):
        raise RequestRejected("DTD or entity declaration", status=400)
    try:
        parsed: Any = xmltodict.parse(body, disable_entities=True)
    except (ExpatError, ValueError) as exc:
        raise RequestRejected("malformed XML", status=400) from exc
    root = parsed.get("xml") if isinstance(parsed, dict) else None
    if not isinstance(root, dict):
        raise RequestRejected("not a WeChat message", status=400)
    return root
