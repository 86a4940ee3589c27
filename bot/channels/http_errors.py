"""Refusals of the bot's own HTTP API (web chat, support console) that never echo input.

FastAPI's default 422 copies each offending value into the answer: a large body comes back
whole, and a NaN or Infinity (which Python's JSON parser accepts) cannot be encoded at all, so
the refusal itself fails with a 500. Here a 422 names where and what, never the value, and a
body nested deeper than the parser can follow is a 400.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger("sealbot.http")

MAX_ERRORS = 10


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "loc": [str(part)[:64] for part in error.get("loc", ())][:8],
            "msg": str(error.get("msg", ""))[:200],
            "type": str(error.get("type", ""))[:64],
        }
        for error in exc.errors()[:MAX_ERRORS]
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _too_deep(request: Request, _exc: Exception) -> JSONResponse:
    log.info("request to %s refused: body nested too deep", request.url.path)
    return JSONResponse({"detail": "body nested too deep"}, status_code=400)


def install_input_refusals(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(RecursionError, _too_deep)
