"""HTTP and WebSocket endpoints the bridge program talks to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from pathlib import Path

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bot.bridge import protocol as wire
from bot.bridge.download import add_download_routes
from bot.bridge.hub import BridgeHub, PairingRefused

log = logging.getLogger(__name__)

HELLO_TIMEOUT_SECONDS = 15.0
CLOSE_AUTH_FAILED = 4401


class PairRequest(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    device_name: str = Field(default="PC", max_length=64)


class UnpairRequest(BaseModel):
    device_id: str = Field(max_length=64)
    secret: str = Field(max_length=128)


async def _serving(work: Awaitable[None], device_id: str) -> None:
    """Serve one frame (or the jobs sent on connect). An error there is one job's problem: it
    is logged, and the connection, with the PC's other jobs, stays up."""
    try:
        await work
    except (WebSocketDisconnect, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("bridge %s: serving a frame failed; the connection stays open", device_id)


def bridge_router(hub: BridgeHub, *, wheel_dir: Path = Path("dist")) -> APIRouter:
    router = APIRouter(prefix="/bridge", tags=["bridge"])
    add_download_routes(router, wheel_dir)

    @router.post("/pair")
    async def pair(body: PairRequest, request: Request) -> JSONResponse:
        client_ip = request.client.host if request.client else "unknown"
        try:
            paired = await hub.redeem_pairing_code(body.code, body.device_name, client_ip)
        except PairingRefused as exc:
            status = 429 if exc.reason == "too_many_attempts" else 400
            return JSONResponse({"error": exc.reason}, status_code=status)
        return JSONResponse(
            {"device_id": paired.device_id, "account_id": paired.account_id, "secret": paired.secret}
        )

    @router.post("/unpair")
    async def unpair(body: UnpairRequest) -> JSONResponse:
        if await hub.revoke_by_credential(body.device_id, body.secret):
            return JSONResponse({"revoked": True})
        return JSONResponse({"error": "unknown_device"}, status_code=401)

    @router.websocket("/ws")
    async def bridge_socket(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            first = await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT_SECONDS)
            hello = wire.decode(first)
        except (TimeoutError, wire.ProtocolError, WebSocketDisconnect):
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=CLOSE_AUTH_FAILED)
            return
        if not isinstance(hello, wire.Hello):
            await websocket.close(code=CLOSE_AUTH_FAILED)
            return
        device = await hub.authenticate(hello)
        if isinstance(device, str):
            await websocket.send_text(wire.AuthFailed(reason=device).encode())
            await websocket.close(code=CLOSE_AUTH_FAILED)
            return

        send_lock = asyncio.Lock()

        async def send(text: str) -> None:
            async with send_lock:
                await websocket.send_text(text)

        async def close() -> None:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=CLOSE_AUTH_FAILED)

        welcome = await hub.attach(device, send, close)
        try:
            await send(welcome.encode())
            await _serving(hub.after_welcome(device.id), device.id)
            while True:
                frame = await websocket.receive_text()
                await _serving(hub.handle_frame(device.id, frame), device.id)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            await hub.detach(device.id, send)

    return router
