"""The webhook: ``POST /telegram/<path>`` with the secret-token header.

Refusals: wrong path 404, missing or wrong secret 403, oversized body 413, a body that is not
a JSON object (malformed, not UTF-8, nested too deep) 400, NaN or Infinity 422. A valid update is handled before answering 200 so that a crash makes
Telegram deliver it again (the engine deduplicates); a failure of our own storage answers 503,
which Telegram also retries. Nothing the sender controls produces a 500.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import SQLAlchemyError

from bot.channels.http_body import BadJson, parse_json, read_capped
from bot.channels.telegram.processor import UpdateProcessor
from bot.channels.telegram.settings import TelegramSettings
from bot.errors import SealbotError

log = logging.getLogger("sealbot.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# failures of our own infrastructure: answering 5xx makes Telegram deliver the update again
TRANSIENT = (SealbotError, SQLAlchemyError, OSError)


def make_router(settings: TelegramSettings, processor: UpdateProcessor) -> APIRouter:
    router = APIRouter()
    secret = settings.webhook_secret.get_secret_value().encode()

    @router.post("/telegram/{path}", include_in_schema=False)
    async def telegram_webhook(path: str, request: Request) -> Response:
        if not hmac.compare_digest(path.encode(), settings.webhook_path.encode()):
            return Response(status_code=404)
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not secret or not hmac.compare_digest(given, secret):
            return Response(status_code=403)
        if not processor.ready:
            # The Bot API has not answered getMe since the start (the channel keeps asking):
            # Telegram keeps the update and delivers it again later.
            return Response(status_code=503)
        body = await read_capped(request, settings.max_body_bytes)
        if body is None:
            return Response(status_code=413)
        try:
            data = parse_json(body)
        except BadJson as exc:
            log.info("telegram webhook refused (%s): %s", exc.status, exc)
            return Response(status_code=exc.status)
        if not isinstance(data, dict):
            return Response(status_code=400)
        try:
            await processor.process(data)
        except TRANSIENT:
            log.exception("telegram update %s not handled; Telegram will retry", data.get("update_id"))
            return Response(status_code=503)
        except Exception:
            # A poisoned update must not be redelivered forever: log it and let it go.
            log.exception("telegram update %s failed", data.get("update_id"))
        return Response(status_code=200)

    return router
