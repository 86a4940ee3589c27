"""The platform's composition root: builds its services and its ASGI app.

``create_platform_app`` is what the bot mounts at ``/platform`` in the embedded default and what
``uvicorn seal_platform.app:standalone`` would serve as a separate service. Routers are listed
here, one per concept module; each takes its dependencies from ``request.app.state.services``
(``seal_platform.services``). Nothing inside ``seal_platform`` imports this module: it is the top
of the platform's import graph, so its imports sit at the top of the file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dbkit.bus import PLATFORM_EVENTS_TOPIC, Announcer, RedisBus
from observability.route_warm_up import warm_routes
from seal_platform import (
    api_accounts,
    api_ca,
    api_checks,
    api_documents,
    api_events,
    api_health,
    api_notices,
    api_orders,
    api_payments,
    api_personal_data,
    api_reminders,
    api_seals,
    api_staff,
    api_station,
    dev_pages,
    mail,
    mail_outbox,
    notices,
    operator,
)
from seal_platform.clock import Clock, SystemClock
from seal_platform.console import router as console_router
from seal_platform.console import sandbox as console_sandbox
from seal_platform.db import Database
from seal_platform.errors import InvalidInput, PlatformError
from seal_platform.events import EventNotifier, notifier_for
from seal_platform.field_crypto import bind_field_cipher
from seal_platform.invoicing import InvoicingProvider
from seal_platform.payments.base import PaymentProvider
from seal_platform.payments.sandbox import SandboxProvider
from seal_platform.payments.wechatpay import WeChatPayProvider
from seal_platform.production.ca import CertificateAuthority
from seal_platform.realname import LocalRealNameVerifier, RealNameVerifier
from seal_platform.security import FieldCipher, PasswordHasher, field_cipher_of
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.sms import SmsProvider
from seal_platform.sms_providers import build_sms_provider
from seal_platform.storage import BlobStore, storage_from_settings


def create_platform_app(services: PlatformServices, *, owns_services: bool = False) -> FastAPI:
    """``owns_services``: the app closes them when it stops (a standalone platform, whose
    services were built for it); otherwise whoever built them does."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Only a standalone platform runs this (a mounted app's lifespan is not): its routes
        # are prepared before the first request, mail left due by an SMTP outage or a restart
        # goes out without waiting for the next commit, and commits that added events are
        # announced on the bot workers' bus (PLATFORM_REDIS_URL).
        await warm_routes(app)
        dispatcher = mail_outbox.dispatcher_for(services.db)
        sweep = asyncio.create_task(dispatcher.sweep_forever()) if dispatcher is not None else None
        try:
            async with announce_events(services):
                yield
        finally:
            if sweep is not None:
                sweep.cancel()
            if owns_services:
                await services.aclose()

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
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(invalid_request(exc))

    for router in routers(services.settings):
        app.include_router(router)
    return app


@asynccontextmanager
async def announce_events(services: PlatformServices) -> AsyncIterator[None]:
    """With ``PLATFORM_REDIS_URL``, every commit that added events is announced on the bot
    workers' event bus (``platform.events``) while the app runs."""
    url = services.settings.redis_url
    if not url:
        yield
        return
    bus = RedisBus(url, prefix=services.settings.bus_prefix)
    await bus.start()
    announcer = Announcer(bus, PLATFORM_EVENTS_TOPIC)
    unsubscribe = services.event_notifier.subscribe(announcer)
    try:
        yield
    finally:
        unsubscribe()
        await announcer.close()
        await bus.close()


def problem_response(exc: PlatformError) -> JSONResponse:
    """The one shape of every refusal: the platform's problem JSON."""
    headers = {}
    retry_after = exc.details.get("retry_after")
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(status_code=exc.status_code, content=exc.to_problem(), headers=headers)


def invalid_request(exc: RequestValidationError) -> InvalidInput:
    """A body that does not fit the schema, said without echoing the input back.

    FastAPI's default answer repeats each faulty value: a megabyte string comes back whole, and
    a NaN or Infinity (which Python's JSON parser accepts) cannot be rendered as JSON at all, so
    the answer became a 500 with a traceback. Only where and what kind of fault is kept.
    """
    errors = [
        {"loc": [str(part) for part in error.get("loc", ())][:10], "type": str(error.get("type", ""))[:60]}
        for error in exc.errors()[:20]
    ]
    return InvalidInput("request does not match the API schema", code="invalid_request", errors=errors)


def routers(settings: PlatformSettings) -> list[APIRouter]:
    """The whole API surface, one line per concept module."""
    listed = [api_health.router]  # liveness and readiness, public
    listed += [api_accounts.router, api_events.router, api_checks.router]
    listed += [api_orders.router, api_documents.router, api_seals.router]
    listed += [api_payments.router, api_payments.public_router, api_staff.router]
    listed.append(api_reminders.router)  # the scheduler's service endpoints
    listed.append(api_personal_data.router)  # the user's copy and deletion (issue 15)
    listed.append(api_ca.router)  # CRL and OCSP, public
    listed.append(api_station.router)  # the production station's bridge
    listed.append(console_router.router)  # the staff console
    listed.append(operator.router)  # who runs the service (issue 11)
    listed.append(api_notices.router)  # opt-in e-mailed status notices
    if settings.payment_provider == "sandbox" and not settings.production:
        listed.append(api_payments.sandbox_pages)
    if not settings.production:
        listed.append(console_sandbox.router)  # set a seal's expiry (reminder trials)
    if settings.dev_pages and not settings.production:
        listed.append(dev_pages.router)
    return listed


def build_platform_services(
    settings: PlatformSettings,
    clock: Clock | None = None,
    *,
    sms_provider: SmsProvider | None = None,
    realname_verifier: RealNameVerifier | None = None,
    password_hasher: PasswordHasher | None = None,
    field_cipher: FieldCipher | None = None,
    event_notifier: EventNotifier | None = None,
    blob_store: BlobStore | None = None,
    invoicing: InvoicingProvider | None = None,
    payment_providers: Mapping[str, PaymentProvider] | None = None,
    certificate_authority: CertificateAuthority | None = None,
) -> PlatformServices:
    """The services of the embedded default; pass providers to replace the defaults (tests, prod).

    This is the only place where a provider's default is chosen.
    """
    clock = clock or SystemClock()
    db = Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout_seconds=settings.database_pool_timeout_seconds,
    )
    storage = storage_from_settings(settings, clock, db.engine)
    services = PlatformServices(
        settings=settings,
        db=db,
        clock=clock,
        # production providers (issue 11): chosen by settings, see seal_platform/sms_providers
        sms_provider=sms_provider or build_sms_provider(settings),
        realname_verifier=realname_verifier or LocalRealNameVerifier(),
        password_hasher=password_hasher or PasswordHasher(max_workers=settings.password_hash_workers),
        field_cipher=field_cipher or field_cipher_of(settings),
        event_notifier=event_notifier or notifier_for(db),
        blob_store=blob_store or storage.documents,
        ca_store=storage.ca,
        invoicing=invoicing,
        certificate_authority=certificate_authority,
    )
    # Mailing addresses and invoice data are encrypted by their column types with this cipher.
    bind_field_cipher(db.engine, services.field_cipher)
    mail_outbox.install(
        mail_outbox.MailDispatcher(
            services,
            renderers={mail.INVOICE_MAIL: mail.render_invoice, notices.NOTICE_MAIL: notices.render_notice},
            send=lambda message: mail.send_mail(services.settings, message),
        )
    )
    if payment_providers is not None:
        services.payment_providers.update(payment_providers)
    else:
        if settings.payment_provider == "sandbox":
            services.payment_providers["sandbox"] = SandboxProvider(services)
        # Built at start-up so that a malformed key refuses to start; without keys (a trial of
        # the settings outside production, which checks they are set) there is no WeChat Pay.
        wanted = settings.payment_provider == "wechatpay" or settings.wechatpay_mchid
        has_keys = settings.wechatpay_private_key.get_secret_value() and settings.wechatpay_public_key
        if wanted and has_keys:
            services.payment_providers["wechatpay"] = WeChatPayProvider.from_settings(settings, clock)
    return services
