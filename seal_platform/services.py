"""What a platform request handler may use: one typed value, built once by the bootstrap.

``PlatformServices`` names every provider the platform talks to (SMS gateway, identity vendor,
password hasher, field cipher, event notifier, blob store, payment gateways, invoicing adapter,
CA, production station)
with its own type, so a module takes what it needs by attribute and the type checker sees it.
The defaults are decided in exactly one place, ``seal_platform.app.build_platform_services``;
tests and production pass replacements there as keyword arguments.

This module sits below every concept module: it imports only settings, the database and the
clock at run time, and the provider types only for the type checker, so that any module may
import it without creating an import cycle (``tests/test_import_graph.py`` keeps it so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from seal_platform.clock import Clock
from seal_platform.db import Database
from seal_platform.settings import PlatformSettings

if TYPE_CHECKING:
    from dbkit.blobs import SealedBlobs
    from seal_platform.console.sessions import SessionPolicy
    from seal_platform.events import EventNotifier
    from seal_platform.invoicing import InvoicingProvider
    from seal_platform.payments.base import PaymentProvider
    from seal_platform.production.ca import CertificateAuthority
    from seal_platform.production.progress import ProductionProgress
    from seal_platform.production.station import ProductionStation
    from seal_platform.production.station_hub import StationHub
    from seal_platform.realname import RealNameVerifier
    from seal_platform.security import FieldCipher, PasswordHasher
    from seal_platform.sms import SmsProvider
    from seal_platform.storage import BlobStore


@dataclass
class PlatformServices:
    """Everything a platform request handler may need; built once, passed by reference."""

    settings: PlatformSettings
    db: Database
    clock: Clock
    sms_provider: SmsProvider
    realname_verifier: RealNameVerifier
    password_hasher: PasswordHasher
    field_cipher: FieldCipher
    event_notifier: EventNotifier
    blob_store: BlobStore
    # ``None``: the adapter chosen by settings (``invoicing.adapters.provider_for``); tests pass
    # their own.
    invoicing: InvoicingProvider | None = None
    # Keyed by provider name ("sandbox", "wechatpay"); the sandbox needs the services it belongs
    # to, so the bootstrap fills this right after construction.
    payment_providers: dict[str, PaymentProvider] = field(default_factory=dict)
    # Loaded (or created once, under a database lock) from ``ca_store`` by
    # ``seals.load_certificate_authority``, at start-up or on first use.
    certificate_authority: CertificateAuthority | None = None
    # Where the CA's keys, certificates and revocations live (``storage.storage_from_settings``);
    # ``None``: files under ``data_dir/ca``.
    ca_store: SealedBlobs | None = None
    # ``None``: the console's own defaults (see ``console.sessions.session_policy``).
    console_session_policy: SessionPolicy | None = None
    # Where new seals are written onto blank keys; ``None``: the station chosen by settings, made
    # on first use by ``production.stations.production_station`` (tests and the demo set theirs).
    production_station: ProductionStation | None = None
    # The paired remote stations (``production.station_hub``); made on first use.
    station_hub: StationHub | None = None
    # What each production run is doing now (``production.progress``); made on first use.
    production_progress: ProductionProgress | None = None

    async def aclose(self) -> None:
        """At shutdown, by whoever built the services: the stores' connections (an S3
        bucket's), then the database's."""
        await self.blob_store.aclose()
        if self.ca_store is not None:
            await self.ca_store.aclose()
        await self.db.dispose()


def get_services(request: Request) -> PlatformServices:
    """FastAPI dependency: the services the app was created with."""
    services: PlatformServices = request.app.state.services
    return services
