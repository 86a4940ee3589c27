"""Which production station writes new seals (``PLATFORM_PRODUCTION_STATION``).

Kept apart from ``station`` (the runner) and ``station_hub`` (the remote one), which it both
chooses from, so that neither of those has to import the other's module.
"""

from __future__ import annotations

from seal_platform.errors import UpstreamError
from seal_platform.production.station import DemoBlankKeys, ProductionStation, RunnerStation
from seal_platform.production.station_hub import station_hub
from seal_platform.services import PlatformServices


def production_station(services: PlatformServices) -> ProductionStation:
    """The station set on the services (tests, the demo), else the one chosen by settings."""
    station = services.production_station
    if station is None:
        settings = services.settings
        if settings.production_station == "local":
            if not settings.station_pkcs11_module:
                raise UpstreamError(
                    "no PKCS#11 module is configured for the production station",
                    code="station_not_configured",
                )
            from ukey_bridge.pkcs11_backend import Pkcs11Backend, Pkcs11Config

            config = Pkcs11Config(settings.station_pkcs11_module)
            station = RunnerStation(lambda: Pkcs11Backend(config))
        elif settings.production_station == "remote":
            station = station_hub(services)
        else:
            station = RunnerStation(DemoBlankKeys())
        services.production_station = station
    return station
