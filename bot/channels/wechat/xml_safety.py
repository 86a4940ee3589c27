"""Parsing XML from the Internet: size-capped, UTF-8 only, no DTD, no entities.

The parser itself refuses a document type declaration (and, with it, entity, element and
attribute-list declarations): the refusal is decided by what the document is, so ordinary
text that merely mentions ``<!DOCTYPE`` inside CDATA is read as the text it is. An XML body is
only parsed after its signature passed.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from xml.parsers import expat
from xml.parsers.expat import ExpatError

import xmltodict

from bot.errors import RequestRejected


class _DeclarationRefused(ValueError):
    pass


def _refuse(*_args: Any) -> None:
    raise _DeclarationRefused("DTD or entity declaration")


def _parser_create(encoding: str | None = None, namespace_separator: str | None = None) -> Any:
    parser = expat.ParserCreate(encoding, namespace_separator)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ElementDeclHandler = _refuse
    parser.AttlistDeclHandler = _refuse
    return parser


# what xmltodict calls to make its parser: expat, with every declaration refused
_REFUSING_EXPAT = SimpleNamespace(ParserCreate=_parser_create)


def parse_xml(body: bytes, *, limit: int) -> dict[str, str]:
    """The children of ``<xml>`` as text (nested elements are kept as dicts)."""
    if len(body) > limit:
        raise RequestRejected("body too large", status=413)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejected("body is not UTF-8", status=400) from exc
    try:
        parsed: Any = xmltodict.parse(body, disable_entities=True, expat=_REFUSING_EXPAT)
    except _DeclarationRefused as exc:
        raise RequestRejected("DTD or entity declaration", status=400) from exc
    except (ExpatError, ValueError) as exc:
        raise RequestRejected("malformed XML", status=400) from exc
    root = parsed.get("xml") if isinstance(parsed, dict) else None
    if not isinstance(root, dict):
        raise RequestRejected("not a WeChat message", status=400)
    return root
