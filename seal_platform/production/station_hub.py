"""The remote production station: staff's `ukey-bridge`, paired to their console account.

A producer asks the console for a pairing code and runs, on the production PC,
``ukey-bridge pair CODE --station --server URL`` then ``ukey-bridge run``. The bridge speaks
its usual wire protocol (``ukey_bridge.protocol``) with this hub under ``/station/bridge``;
production sends it a ``produce`` job, certifies the CSR it sends back, and waits for the
result (what was read back from the key). A station that is offline, drops or answers late
fails the production with nothing recorded; staff retry it.

Credentials need no table: a station's device id names the staff member, and its secret is
derived from the device id under the platform's secret key, so only the platform can make
one, and only the PC that paired holds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from seal_platform.errors import PlatformError
from seal_platform.production import station_devices
from seal_platform.production.progress import StepSink, no_progress
from seal_platform.production.station import (
    Certify,
    KeyOrder,
    ProducedKey,
    StationFailed,
    failure_of,
    step_of,
)
from seal_platform.services import PlatformServices
from ukey_bridge import protocol as wire
from ukey_bridge.errors import ProtocolError
from ukey_bridge.outcomes import JobReport

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_TTL = timedelta(minutes=10)
JOB_TIMEOUT_SECONDS = 300.0
Sender = Callable[[str], Awaitable[None]]
Closer = Callable[[], Awaitable[None]]


class PairingRefused(PlatformError):
    status_code = 400
    code = "invalid_code"


@dataclass
class _Pending:
    order: KeyOrder
    certify: Certify
    done: asyncio.Future[wire.JobResult]
    progress: StepSink = no_progress
    attempt: int = 0


@dataclass
class _Live:
    device_id: str
    staff: str
    name: str
    signing_key: bytes
    send: Sender
    close: Closer
    pending: dict[str, _Pending] = field(default_factory=dict)


class StationHub:
    def __init__(self, services: PlatformServices) -> None:
        self._services = services
        self._codes: dict[str, tuple[str, datetime]] = {}
        self._live: dict[str, _Live] = {}

    # -- pairing ----------------------------------------------------------------------------

    def create_code(self, staff_username: str) -> str:
        now = self._services.clock.now()
        self._codes = {c: v for c, v in self._codes.items() if v[1] > now}
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        self._codes[code] = (staff_username, now + CODE_TTL)
        return code

    def _secret(self, device_id: str) -> str:
        key = self._services.settings.secret_key.get_secret_value().encode()
        return hmac.new(key, f"station-device:{device_id}".encode(), hashlib.sha256).hexdigest()

    async def redeem(self, code: str, device_name: str = "PC") -> dict[str, str]:
        entry = self._codes.pop("".join(ch for ch in code.upper() if ch.isalnum()), None)
        now = self._services.clock.now()
        if entry is None or entry[1] <= now:
            raise PairingRefused("the pairing code is not valid or has expired")
        device_id = f"{entry[0]}.{secrets.token_hex(8)}"
        async with self._services.db.session() as session:
            await station_devices.record_pairing(session, device_id, entry[0], device_name, now)
            await session.commit()
        return {"device_id": device_id, "account_id": _account(entry[0]), "secret": self._secret(device_id)}

    def valid_secret(self, device_id: str, secret: str) -> bool:
        return hmac.compare_digest(self._secret(device_id), secret)

    async def authenticate(self, hello: wire.Hello) -> str | None:
        """The staff username of a valid station credential that was not unpaired."""
        if not self.valid_secret(hello.device_id, hello.secret):
            return None
        staff = staff_of(hello.device_id)
        async with self._services.db.session() as session:
            if await station_devices.is_revoked(session, hello.device_id):
                return None
            # paired before stations were recorded: recorded now, so it can be unpaired
            now = self._services.clock.now()
            await station_devices.record_pairing(session, hello.device_id, staff, hello.host_name, now)
            await session.commit()
        return staff

    async def unpair(self, device_id: str, staff: str, *, by: str) -> bool:
        """Unpair a station of ``staff``: it can no longer connect, its connection is closed
        now, and a production it was running goes to another of the staff member's stations
        that is online (else it fails with nothing recorded, to be retried)."""
        async with self._services.db.session() as session:
            done = await station_devices.revoke(session, device_id, staff, by, self._services.clock.now())
            await session.commit()
        if not done:
            return False
        live = self._live.pop(device_id, None)
        if live is not None:
            await self._reoffer(live, "station_unpaired")
            await live.close()
        return True

    async def stations_of(self, staff: str) -> list[station_devices.StationInfo]:
        async with self._services.db.session() as session:
            rows = await station_devices.paired_stations(session, staff)
        return [
            station_devices.StationInfo(r.device_id, r.name, r.paired_at, r.device_id in self._live)
            for r in rows
        ]

    # -- connections ------------------------------------------------------------------------

    def attach(self, hello: wire.Hello, staff: str, send: Sender, close: Closer) -> wire.Welcome:
        self._live[hello.device_id] = _Live(
            hello.device_id, staff, hello.host_name, wire.signing_key(hello.secret), send, close
        )
        return wire.Welcome(
            device_id=hello.device_id,
            account_id=_account(staff),
            server_time=self._services.clock.now().timestamp(),
            heartbeat_seconds=20.0,
        )

    async def detach(self, device_id: str, send: Sender) -> None:
        live = self._live.get(device_id)
        if live is None or live.send is not send:
            return
        del self._live[device_id]
        await self._reoffer(live, "station_disconnected")

    async def _reoffer(self, gone: _Live, code: str) -> None:
        """The jobs of a station that went away go to another online station of the same staff
        member (the job id stays, so a key it half-made is resumed there if it is moved); with
        none online they fail, nothing recorded, and staff retry."""
        for job_id, pending in list(gone.pending.items()):
            gone.pending.pop(job_id, None)
            if pending.done.done():
                continue
            others = [live for live in self._live.values() if live.staff == gone.staff]
            if others:
                await self._offer(others[0], pending)
                continue
            message = (
                "制作台已解除配对，未记录为已制作：请在您的另一台制作台上重试。"
                if code == "station_unpaired"
                else "制作过程中制作台断开了连接，未记录为已制作：请重试。"
            )
            pending.done.set_exception(StationFailed(message, code=code))

    def online(self, staff: str | None = None) -> list[str]:
        """The names of the stations online (of ``staff`` only, when given)."""
        return [live.name for live in self._live.values() if staff is None or live.staff == staff]

    async def handle_frame(self, device_id: str, frame: str) -> None:
        live = self._live.get(device_id)
        if live is None:
            return
        try:
            message = wire.decode(frame)
        except ProtocolError:
            return
        if isinstance(message, wire.CertificateRequest):
            await self._on_csr(live, message)
        elif isinstance(message, wire.JobProgress):
            pending = live.pending.get(message.job_id)
            step = step_of(message.detail)
            if pending is not None and step is not None:
                pending.progress(step)
        elif isinstance(message, wire.JobResult):
            pending = live.pending.get(message.job_id)
            if pending is not None and not pending.done.done():
                pending.done.set_result(message)
        elif isinstance(message, wire.JobRefused):
            pending = live.pending.get(message.job_id)
            if pending is not None and not pending.done.done():
                pending.done.set_exception(
                    StationFailed(f"the station refused the job: {message.reason}", code="station_busy")
                )

    async def _on_csr(self, live: _Live, request: wire.CertificateRequest) -> None:
        pending = live.pending.get(request.job_id)
        if pending is None:
            await live.send(wire.IssueFailed(job_id=request.job_id, reason="no such job").encode())
            return
        try:
            issued = await pending.certify(wire.b64decode(request.csr_der))
        except (PlatformError, ProtocolError) as exc:
            await live.send(wire.IssueFailed(job_id=request.job_id, reason=str(exc)).encode())
            return
        message = wire.with_signature(
            wire.CertificateIssued(
                sig="",
                job_id=request.job_id,
                cert_der=wire.b64encode(issued.cert_der),
                seseal_der=wire.b64encode(issued.seseal_der),
                chain_pem=issued.chain_pem,
            ),
            live.signing_key,
        )
        await live.send(message.encode())

    # -- the ProductionStation port -----------------------------------------------------------

    def require_online(self, staff: str) -> None:
        """Refuse (``station_offline``) unless one of ``staff``'s own stations is online."""
        self._station_for(staff)

    def _station_for(self, staff: str | None) -> _Live:
        """The station paired by (or for) the staff member who asked; never a colleague's."""
        mine = [live for live in self._live.values() if staff is None or live.staff == staff]
        if not mine:
            raise StationFailed(
                "您的制作台不在线：请在配对给您账号的制作台电脑上运行 ukey-bridge run 后重试"
                "（制作不会交给其他同事的制作台）。",
                code="station_offline",
                staff=staff,
            )
        idle = [live for live in mine if not live.pending]
        return (idle or mine)[0]

    async def produce(
        self, order: KeyOrder, certify: Certify, progress: StepSink = no_progress
    ) -> ProducedKey:
        live = self._station_for(order.staff)
        done: asyncio.Future[wire.JobResult] = asyncio.get_running_loop().create_future()
        pending = _Pending(order, certify, done, progress)
        try:
            await self._offer(live, pending)
            result = await asyncio.wait_for(done, JOB_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            raise StationFailed(
                "the production station did not answer in time", code="station_timeout"
            ) from exc
        finally:
            for station in self._live.values():
                station.pending.pop(order.job_id, None)
        report = JobReport(
            wire.Outcome(result.outcome) if result.outcome in set(wire.Outcome) else wire.Outcome.FAILED,
            result.message,
            data=dict(result.data),
        )
        if not report.succeeded:
            raise failure_of(report)
        return ProducedKey(
            key_serial=str(report.data["key_serial"]),
            certificate_sha256=str(dict(report.data["new_certificate"])["sha256"]),
            seseal_sha256=str(report.data["seseal_sha256"]),
        )

    async def _offer(self, live: _Live, pending: _Pending) -> None:
        """Send the production job to ``live`` (again, with the next attempt number)."""
        pending.attempt += 1
        live.pending[pending.order.job_id] = pending
        order = pending.order
        offer = wire.with_signature(
            wire.JobOffer(
                sig="",
                job_id=order.job_id,
                account_id=_account(live.staff),
                device_id=live.device_id,
                job_type=wire.JobType.PRODUCE.value,
                params={"label": order.label, "so_pin": order.so_pin, "subject": order.subject},
                nonce=secrets.token_hex(16),
                issued_at=self._services.clock.now().timestamp(),
                attempt=pending.attempt,
            ),
            live.signing_key,
        )
        await live.send(offer.encode())


def staff_of(device_id: str) -> str:
    """The staff member a station was paired for: its device id is ``<username>.<random>``."""
    return device_id.rsplit(".", 1)[0]


def _account(staff_username: str) -> str:
    return f"staff:{staff_username}"


def station_hub(services: PlatformServices) -> StationHub:
    if services.station_hub is None:
        services.station_hub = StationHub(services)
    return services.station_hub
