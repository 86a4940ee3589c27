"""The web chat visitor's address, for the platform's SMS abuse limits.

``X-Forwarded-For`` is whatever the client sent unless a proxy we run wrote it, so it is read
only when the connection comes from a configured proxy (``SEALBOT_TRUSTED_PROXIES``), and then
from the right: the first address that is not one of our proxies is the visitor. Anything the
visitor put further left is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from fastapi import Request

from bot.settings import Network


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(request: Request, proxies: Sequence[Network]) -> str | None:
    peer = request.client.host if request.client else None
    if peer is None or not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed hop: no address we could trust further left
    return peer
