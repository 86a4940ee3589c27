"""The operator's admin port: ``/metrics`` and the platform API docs, on a port of their own.

In production these are not served on the public port; ``SEALBOT_ADMIN_PORT`` (bound to
``SEALBOT_ADMIN_HOST``, 127.0.0.1 by default) is where Prometheus and the operator reach them.
The admin app reads the running service's container from the public app's state.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from bot.errors import SealbotError


class ServiceNotStarted(SealbotError):
    """The public app's lifespan has not built the container yet."""


def create_admin_app(public_app: FastAPI) -> FastAPI:
    admin = FastAPI(title="sealbot admin", docs_url=None, redoc_url=None, openapi_url=None)

    def container() -> Any:
        found = getattr(public_app.state, "container", None)
        if found is None:
            raise ServiceNotStarted("the service is still starting")
        return found

    @admin.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        from bot.app import metrics_response

        return metrics_response(container())

    @admin.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Readiness with the reason of each failed check (the public port says only which)."""
        from bot.app import readiness_response

        return await readiness_response(getattr(public_app.state, "container", None))

    @admin.get("/platform/openapi.json", include_in_schema=False)
    async def platform_openapi() -> JSONResponse:
        platform_app = container().platform_app
        if platform_app is None:
            return JSONResponse({"detail": "the platform runs as a separate service"}, status_code=404)
        # The platform app serves no schema in production; generating it here needs no route.
        schema = platform_app.openapi()
        return JSONResponse(schema)

    @admin.get("/platform/docs", include_in_schema=False)
    async def platform_docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/platform/openapi.json", title="Seal platform API")

    return admin
