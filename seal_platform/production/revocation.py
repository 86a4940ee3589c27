"""Revoked seal certificates, the CRL and OCSP answers of the platform CA.

Revocations are kept beside the CA's keys (``data_dir/ca/revoked.json``, written atomically
under the CA directory's lock), so every platform process that can issue sees them. The CRL is
re-signed on every revocation and whenever the served one is more than a day old; each CRL is
valid for ``CRL_VALIDITY`` (its nextUpdate), so a relying party never holds an expired one.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from seal_platform.orders import Order, OrderType
from seal_platform.production.ca import RevokedEntry, _directory_lock, _write_atomically
from seal_platform.seals import certificate_authority
from seal_platform.services import PlatformServices

CRL_VALIDITY = timedelta(days=2)
CRL_REFRESH = timedelta(days=1)
OCSP_VALIDITY = timedelta(hours=1)
_REVOKED = "revoked.json"
_CRL = "crl.der"


class RevocationReason:
    """The RFC 5280 reason each process gives."""

    CANCELLED = x509.ReasonFlags.cessation_of_operation
    KEY_LOST = x509.ReasonFlags.key_compromise
    RENEWED = x509.ReasonFlags.superseded
    CHANGED = x509.ReasonFlags.affiliation_changed


@dataclass(frozen=True)
class _Registry:
    directory: Path

    def entries(self) -> dict[int, RevokedEntry]:
        path = self.directory / _REVOKED
        if not path.exists():
            return {}
        raw = json.loads(path.read_text("utf-8"))
        return {
            int(serial, 16): RevokedEntry(
                int(serial, 16), datetime.fromisoformat(item["at"]), x509.ReasonFlags(item["reason"])
            )
            for serial, item in raw.items()
        }

    def add(self, serial: int, at: datetime, reason: x509.ReasonFlags) -> bool:
        entries = self.entries()
        if serial in entries:
            return False  # revoked once, with its first reason and date
        entries[serial] = RevokedEntry(serial, at, reason)
        body = {
            format(e.serial, "x"): {"at": e.revoked_at.isoformat(), "reason": e.reason.value}
            for e in entries.values()
        }
        _write_atomically(self.directory / _REVOKED, json.dumps(body, sort_keys=True).encode())
        return True


def _directory(services: PlatformServices) -> Path:
    return Path(services.settings.data_dir) / "ca"


def _sign_crl(services: PlatformServices, registry: _Registry, now: datetime) -> bytes:
    entries = sorted(registry.entries().values(), key=lambda e: e.serial)
    number = int(now.timestamp())  # increases with every new CRL, as RFC 5280 asks
    crl = certificate_authority(services).sign_crl(
        entries, number=number, this_update=now, next_update=now + CRL_VALIDITY
    )
    der = crl.public_bytes(Encoding.DER)
    _write_atomically(registry.directory / _CRL, der)
    return der


def _revoke_sync(
    services: PlatformServices, serial_hex: str, reason: x509.ReasonFlags, now: datetime
) -> None:
    directory = _directory(services)
    certificate_authority(services)  # the CA directory exists from here on
    with _directory_lock(directory):
        registry = _Registry(directory)
        if registry.add(int(serial_hex, 16), now, reason):
            _sign_crl(services, registry, now)


async def revoke(services: PlatformServices, serial_hex: str | None, reason: x509.ReasonFlags) -> None:
    """Revoke the certificate with this (hex) serial and publish a new CRL at once."""
    if not serial_hex:
        return
    await asyncio.to_thread(_revoke_sync, services, serial_hex, reason, services.clock.now())


def _crl_sync(services: PlatformServices, now: datetime) -> bytes:
    directory = _directory(services)
    certificate_authority(services)
    with _directory_lock(directory):
        path = directory / _CRL
        if path.exists():
            current = x509.load_der_x509_crl(path.read_bytes())
            if now - current.last_update_utc < CRL_REFRESH:
                return path.read_bytes()
        return _sign_crl(services, _Registry(directory), now)


async def current_crl(services: PlatformServices) -> bytes:
    return await asyncio.to_thread(_crl_sync, services, services.clock.now())


async def ocsp_answer(services: PlatformServices, request_der: bytes) -> bytes:
    now = services.clock.now()

    def answer() -> bytes:
        entries = _Registry(_directory(services)).entries()
        return certificate_authority(services).ocsp_response(
            request_der, entries.get, this_update=now, next_update=now + OCSP_VALIDITY
        )

    return await asyncio.to_thread(answer)


async def revoke_replaced(services: PlatformServices, serial_hex: str | None, order: Order) -> None:
    """Cancellation ends the certificate; renewal, change and a lost-key reissue replace it."""
    reasons = {
        OrderType.CANCELLATION: RevocationReason.CANCELLED,
        OrderType.RENEWAL: RevocationReason.RENEWED,
        OrderType.CHANGE: RevocationReason.CHANGED,
        OrderType.REISSUE: RevocationReason.KEY_LOST,
    }
    reason = reasons.get(OrderType(order.type))
    if reason is not None:
        await revoke(services, serial_hex, reason)
