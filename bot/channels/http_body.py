"""Reading webhook bodies with a size cap, without trusting Content-Length."""

from __future__ import annotations

import json

from starlette.requests import Request


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None when it exceeds ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class BadJson(ValueError):
    """A body that is not plain JSON: malformed, not UTF-8, nested too deep, or NaN/Infinity."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


def _no_constants(name: str) -> object:
    raise BadJson(f"{name} is not JSON", 422)


def parse_json(body: bytes) -> object:
    """Strict JSON: NaN and Infinity (which Python's parser accepts) are refused with 422, a
    body nested deeper than the parser's recursion limit with 400, like any malformed one."""
    try:
        return json.loads(body, parse_constant=_no_constants)
    except BadJson:
        raise
    except RecursionError as exc:
        raise BadJson("nested too deep", 400) from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadJson("malformed JSON", 400) from exc
