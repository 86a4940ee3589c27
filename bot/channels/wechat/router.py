"""``GET/POST /wechat`` (URL verification and messages) and ``GET /wechat/files/<link>``.

Refusals never reach the engine: 413 oversized, 403 unsigned, mis-signed, stale or replayed,
400 non-UTF-8, DTD/entities, malformed or incomplete XML. A failure of our own storage
answers 503 (WeChat retries; the delivery dedupe makes that safe); anything else is logged
and answered "success", so that WeChat neither shows its error notice nor retries a poison
message.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.channels.http_body import read_capped
from bot.channels.wechat.files import FileLinks
from bot.channels.wechat.receiver import WeChatReceiver
from bot.engine.ports import Clock, MediaStore
from bot.errors import RequestRejected, SealbotError

log = logging.getLogger("sealbot.wechat")

TRANSIENT = (SQLAlchemyError, OSError, SealbotError)


def make_router(receiver: WeChatReceiver, links: FileLinks, media: MediaStore, clock: Clock) -> APIRouter:
    router = APIRouter()
    limit = receiver.settings.max_body_bytes

    @router.get("/wechat", include_in_schema=False)
    async def wechat_verify(request: Request) -> Response:
        try:
            return PlainTextResponse(receiver.verify_url(request.query_params))
        except RequestRejected as exc:
            log.info("wechat verification refused: %s", exc.reason)
            return Response(status_code=exc.status)

    @router.post("/wechat", include_in_schema=False)
    async def wechat_message(request: Request) -> Response:
        # WeChat's 5 s run from when it sent the request: the deadline starts here, before
        # the body is read, verified and parsed
        deadline = receiver.deadline_for(clock.now())
        body = await read_capped(request, limit)
        if body is None:
            return Response(status_code=413)
        query = request.query_params
        try:
            opened = await receiver.open(query, body)
            answer = await receiver.handle(opened, deadline=deadline)
        except RequestRejected as exc:
            log.info("wechat request refused (%s): %s", exc.status, exc.reason)
            return Response(status_code=exc.status)
        except TRANSIENT:
            log.exception("wechat message not handled; WeChat will retry")
            return Response(status_code=503)
        except Exception:
            log.exception("wechat message failed")
            return PlainTextResponse("success")
        rendered = receiver.render_answer(answer, encrypted=opened.encrypted, nonce=query.get("nonce", ""))
        media_type = "text/plain" if rendered == "success" else "application/xml"
        return Response(rendered, media_type=media_type)

    @router.get("/wechat/files/{link}", include_in_schema=False)
    async def wechat_file(link: str) -> Response:
        linked = links.open(link, clock.now())
        if linked is None:
            return Response(status_code=404)
        try:
            data = await media.get(linked.media_id)
        except SealbotError:
            return Response(status_code=404)
        disposition = f"attachment; filename*=UTF-8''{quote(linked.filename)}"
        return Response(data, media_type=linked.content_type, headers={"Content-Disposition": disposition})

    return router
