"""Exchanging a chat pairing code for a device credential, and giving it back (unpair)."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

import httpx

from ukey_bridge.credential import DeviceCredential
from ukey_bridge.errors import ConnectionLost, PairingFailed

REASONS = {
    "invalid_code": "That pairing code is not valid. Check it, or ask the chat for a new one.",
    "expired": "That pairing code has expired (codes last 10 minutes). Ask the chat for a new one.",
    "used": "That pairing code was already used. Ask the chat for a new one.",
    "too_many_attempts": "Too many wrong pairing codes. Wait a few minutes and ask the chat for a new one.",
}


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


async def pair(
    server_url: str,
    code: str,
    *,
    device_name: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> DeviceCredential:
    name = device_name or platform.node() or "PC"
    async with httpx.AsyncClient(base_url=server_url, transport=transport, timeout=20) as client:
        try:
            response = await client.post(
                "/bridge/pair", json={"code": normalise_code(code), "device_name": name}
            )
        except httpx.HTTPError as exc:
            raise ConnectionLost(f"cannot reach {server_url}: {exc}") from exc
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        reason = str(body.get("error", "invalid_code"))
        raise PairingFailed(reason, REASONS.get(reason, f"Pairing failed ({reason})."))
    return DeviceCredential(
        server_url=server_url,
        device_id=str(body["device_id"]),
        account_id=str(body["account_id"]),
        secret=str(body["secret"]),
        device_name=name,
        paired_at=datetime.now(UTC).isoformat(),
    )


async def unpair(credential: DeviceCredential, *, transport: httpx.AsyncBaseTransport | None = None) -> bool:
    """Ask the service to revoke this device; True when it did (or already had)."""
    async with httpx.AsyncClient(base_url=credential.server_url, transport=transport, timeout=20) as client:
        try:
            response = await client.post(
                "/bridge/unpair", json={"device_id": credential.device_id, "secret": credential.secret}
            )
        except httpx.HTTPError as exc:
            raise ConnectionLost(f"cannot reach {credential.server_url}: {exc}") from exc
    return response.status_code in (200, 401)
