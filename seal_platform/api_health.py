"""Liveness and readiness of the platform: ``GET /healthz`` and ``GET /readyz``.

``/healthz`` answers while the process runs. ``/readyz`` answers 200 only when the platform's
database answers, else 503 with the reason, so a proxy stops routing to a platform process that
lost its database and the bot's own ``/readyz`` can say which dependency is down. Both are
public and say nothing about the data.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from seal_platform.auth import ServicesDep

router = APIRouter(tags=["health"], include_in_schema=False)

DATABASE_CHECK_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    try:
        async with asyncio.timeout(DATABASE_CHECK_SECONDS):
            async with services.db.session() as session:
                await session.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means "not ready"
        reason = f"database: {type(exc).__name__}"
        return JSONResponse({"status": "unready", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready"})
