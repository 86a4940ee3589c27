"""Where the production station's `ukey-bridge` pairs and connects (``/station/bridge/...``,
the same paths under a station's server URL as the chat service's bridge endpoints)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from seal_platform.auth import ServicesDep
from seal_platform.production.station_hub import PairingRefused, staff_of, station_hub
from seal_platform.services import PlatformServices
from ukey_bridge import protocol as wire
from ukey_bridge.errors import ProtocolError

router = APIRouter(prefix="/station/bridge", tags=["station"])

HELLO_TIMEOUT_SECONDS = 15.0
CLOSE_AUTH_FAILED = 4401


class PairIn(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    device_name: str = Field(default="PC", max_length=64)


@router.post("/pair")
async def pair(body: PairIn, services: ServicesDep) -> JSONResponse:
    try:
        return JSONResponse(await station_hub(services).redeem(body.code, body.device_name))
    except PairingRefused:
        return JSONResponse({"error": "invalid_code"}, status_code=400)


class UnpairIn(BaseModel):
    device_id: str = Field(min_length=1, max_length=96)
    secret: str = Field(min_length=1, max_length=128)


@router.post("/unpair")
async def unpair(body: UnpairIn, services: ServicesDep) -> JSONResponse:
    """``ukey-bridge unpair`` on the station PC: it proves it holds the credential it gives back."""
    hub = station_hub(services)
    if not hub.valid_secret(body.device_id, body.secret):
        return JSONResponse({"revoked": False}, status_code=403)
    staff = staff_of(body.device_id)
    return JSONResponse({"revoked": await hub.unpair(body.device_id, staff, by=staff)})


@router.websocket("/ws")
async def station_socket(websocket: WebSocket) -> None:
    services: PlatformServices = websocket.app.state.services
    hub = station_hub(services)
    await websocket.accept()
    try:
        hello = wire.decode(await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT_SECONDS))
    except (TimeoutError, ProtocolError, WebSocketDisconnect):
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=CLOSE_AUTH_FAILED)
        return
    staff = await hub.authenticate(hello) if isinstance(hello, wire.Hello) else None
    if staff is None or not isinstance(hello, wire.Hello):
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            # a credential the platform made but staff unpaired: the bridge says so and stops
            revoked = isinstance(hello, wire.Hello) and hub.valid_secret(hello.device_id, hello.secret)
            await websocket.send_text(
                wire.AuthFailed(reason="revoked" if revoked else "bad_credential").encode()
            )
            await websocket.close(code=CLOSE_AUTH_FAILED)
        return
    lock = asyncio.Lock()

    async def send(text: str) -> None:
        async with lock:
            await websocket.send_text(text)

    async def close() -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=CLOSE_AUTH_FAILED)

    try:
        await send(hub.attach(hello, staff, send, close).encode())
        while True:
            frame = await websocket.receive_text()
            # one job's frame never ends the connection: the hub answers or ignores it
            await hub.handle_frame(hello.device_id, frame)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await hub.detach(hello.device_id, send)
