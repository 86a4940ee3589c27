"""Revoked seal certificates, the CRL and OCSP answers of the platform CA.

Revocations are kept beside the CA's keys in its shared store (``revoked.json``, rewritten
under a database lock), so every platform process on every host sees them. The CRL is
re-signed on every revocation and whenever the stored one is more than a day old; each CRL is
valid for ``CRL_VALIDITY`` (its nextUpdate), so a relying party never holds an expired one.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from dbkit.blobs import SealedBlobs, database_lock
from seal_platform.orders import Order, OrderType
from seal_platform.production.ca import CertificateAuthority, RevokedEntry
from seal_platform.seals import ca_store, certificate_authority
from seal_platform.services import PlatformServices

CRL_VALIDITY = timedelta(days=2)
CRL_REFRESH = timedelta(days=1)
OCSP_VALIDITY = timedelta(hours=1)
_REVOKED = "revoked.json"
_CRL = "crl.der"
REVOCATION_LOCK = "seal_platform.ca.revocations"


class RevocationReason:
    """The RFC 5280 reason each process gives."""

    CANCELLED = x509.ReasonFlags.cessation_of_operation
    KEY_LOST = x509.ReasonFlags.key_compromise
    RENEWED = x509.ReasonFlags.superseded
    CHANGED = x509.ReasonFlags.affiliation_changed


def _parse(raw: bytes | None) -> dict[int, RevokedEntry]:
    if raw is None:
        return {}
    return {
        int(serial, 16): RevokedEntry(
            int(serial, 16), datetime.fromisoformat(item["at"]), x509.ReasonFlags(item["reason"])
        )
        for serial, item in json.loads(raw.decode("utf-8")).items()
    }


def _dump(entries: dict[int, RevokedEntry]) -> bytes:
    body = {
        format(e.serial, "x"): {"at": e.revoked_at.isoformat(), "reason": e.reason.value}
        for e in entries.values()
    }
    return json.dumps(body, sort_keys=True).encode()


async def _entries(store: SealedBlobs) -> dict[int, RevokedEntry]:
    return _parse(await store.get_named_or_none(_REVOKED))


async def _sign_crl(
    ca: CertificateAuthority, store: SealedBlobs, entries: dict[int, RevokedEntry], now: datetime
) -> bytes:
    listed = sorted(entries.values(), key=lambda e: e.serial)
    number = int(now.timestamp())  # increases with every new CRL, as RFC 5280 asks

    def sign() -> bytes:
        crl = ca.sign_crl(listed, number=number, this_update=now, next_update=now + CRL_VALIDITY)
        return crl.public_bytes(Encoding.DER)

    der = await asyncio.to_thread(sign)
    await store.put_named(_CRL, der)
    return der


async def revoke(services: PlatformServices, serial_hex: str | None, reason: x509.ReasonFlags) -> None:
    """Revoke the certificate with this (hex) serial and publish a new CRL at once."""
    if not serial_hex:
        return
    ca = await certificate_authority(services)
    store, now = ca_store(services), services.clock.now()
    async with database_lock(services.db.engine, REVOCATION_LOCK):
        entries = await _entries(store)
        serial = int(serial_hex, 16)
        if serial in entries:
            return  # revoked once, with its first reason and date
        entries[serial] = RevokedEntry(serial, now, reason)
        await store.put_named(_REVOKED, _dump(entries))
        await _sign_crl(ca, store, entries, now)


async def current_crl(services: PlatformServices) -> bytes:
    ca = await certificate_authority(services)
    store, now = ca_store(services), services.clock.now()
    stored = await store.get_named_or_none(_CRL)
    if stored is not None and now - x509.load_der_x509_crl(stored).last_update_utc < CRL_REFRESH:
        return stored
    async with database_lock(services.db.engine, REVOCATION_LOCK):
        return await _sign_crl(ca, store, await _entries(store), now)


async def ocsp_answer(services: PlatformServices, request_der: bytes) -> bytes:
    ca = await certificate_authority(services)
    now = services.clock.now()
    entries = await _entries(ca_store(services))
    return await asyncio.to_thread(
        ca.ocsp_response, request_der, entries.get, this_update=now, next_update=now + OCSP_VALIDITY
    )


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
