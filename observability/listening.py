"""Whether a server could listen on an address, asked before it starts.

uvicorn finds a port taken only once the application has started (migrations, the container,
the platform), and then says so in one line among the start-up's; both services' ``serve``
commands ask first and refuse in one line instead. The probe binds as uvicorn binds
(``SO_REUSEADDR``), so a port left in TIME_WAIT by the previous run is not taken for busy.
Another program may still take the port between this probe and the server's own bind; the
server's error covers that moment.
"""

from __future__ import annotations

import socket


def why_cannot_listen(host: str, port: int) -> str | None:
    """Why a TCP server could not listen on ``host:port`` (None: it could)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: {exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None
