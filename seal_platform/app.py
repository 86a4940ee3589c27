"""The platform's composition root: builds its services and its ASGI app.

``create_platform_app`` is what the bot mounts at ``/platform`` in the embedded default and what
``uvicorn seal_platform.app:standalone`` would serve as a separate service. Routers are listed
here, one per concept module; each takes its dependencies from ``request.app.state.services``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from seal_platform.clock import Clock, SystemClock
from seal_platform.db import Database
from seal_platform.errors import PlatformError
from seal_platform.settings import PlatformSettings

if TYPE_CHECKING:
    from seal_platform.realname import RealNameVerifier
    from seal_platform.security import PasswordHasher
    from seal_platform.sms import SmsProvider


@dataclass
class PlatformServices:
    """Everything a platform request handler may need; built once, passed by reference."""

    settings: PlatformSettings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    # Filled by the modules that own them (sms provider, payment providers, storage, CA, ...).
    extra: dict[str, Any] = field(default_factory=dict)


def get_services(request: Request) -> PlatformServices:
    services: PlatformServices = request.app.state.services
    return services


def create_platform_app(services: PlatformServices) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="Seal platform API",
        version="1",
        # In production the API docs are served only on the operator's admin port (bot.admin).
        docs_url=None if services.settings.production else "/docs",
        openapi_url=None if services.settings.production else "/openapi.json",
        redoc_url=None if services.settings.production else "/redoc",
        lifespan=lifespan,
    )
    app.state.services = services

    @app.exception_handler(PlatformError)
    async def _platform_error(_request: Request, exc: PlatformError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content=exc.to_problem())

    for router in _routers(services.settings):
        app.include_router(router)
    return app


def build_platform_services(
    settings: PlatformSettings,
    clock: Clock | None = None,
    *,
    sms_provider: SmsProvider | None = None,
    realname_verifier: RealNameVerifier | None = None,
    password_hasher: PasswordHasher | None = None,
) -> PlatformServices:
    """The services of the embedded default; pass providers to replace the defaults (tests, prod)."""
    from seal_platform.events import notifier_for
    from seal_platform.realname import LocalRealNameVerifier
    from seal_platform.security import FieldCipher
    from seal_platform.security import PasswordHasher as DefaultPasswordHasher
    from seal_platform.sms_providers import build_sms_provider

    db = Database(settings.database_url)
    services = PlatformServices(settings=settings, db=db, clock=clock or SystemClock())
    # --- production providers (issue 11): chosen by settings, see seal_platform/sms_providers ---
    services.extra["sms_provider"] = sms_provider or build_sms_provider(settings)
    services.extra["realname_verifier"] = realname_verifier or LocalRealNameVerifier()
    services.extra["password_hasher"] = password_hasher or DefaultPasswordHasher()
    services.extra["field_cipher"] = FieldCipher.from_secret(settings.secret_key.get_secret_value())
    services.extra["event_notifier"] = notifier_for(db)
    return services


def _routers(settings: PlatformSettings) -> list[Any]:
    # One line per concept module; imported here so that the app is the only place that knows
    # the whole API surface.
    from seal_platform import (
        api_accounts,
        api_checks,
        api_documents,
        api_events,
        api_orders,
        api_payments,
        api_seals,
        api_staff,
    )

    routers: list[Any] = [api_accounts.router, api_events.router, api_checks.router]
    routers += [api_orders.router, api_documents.router, api_seals.router]
    routers += [api_payments.router, api_payments.public_router, api_staff.router]
    from seal_platform import api_reminders  # the scheduler's service endpoints

    routers.append(api_reminders.router)
    routers.append(__import__("seal_platform.console.router", fromlist=["router"]).router)  # staff console
    routers.append(__import__("seal_platform.operator", fromlist=["router"]).router)  # issue 11
    if settings.payment_provider == "sandbox" and not settings.production:
        routers.append(api_payments.sandbox_pages)
    if not settings.production:
        from seal_platform.console import sandbox  # set a seal's expiry (reminder trials)

        routers.append(sandbox.router)
    if settings.dev_pages and not settings.production:
        from seal_platform import dev_pages

        routers.append(dev_pages.router)
    return routers
