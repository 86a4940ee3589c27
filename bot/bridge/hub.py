"""The hub: pairing, device records, presence, the job table, and the live bridge connections.

Jobs are rows first and messages second: a job is committed before it is sent, its status
moves only on what the bridge reports, and a bridge that connects is sent every unfinished
job of its account, so jobs survive restarts of either side.

Several workers each hold some bridges' WebSockets. Presence is a row per open connection
(``bridge_presence``), so every worker sees which PCs are online; a job committed on one
worker is announced on the event bus (``bridge.jobs``, the account and job ids only), and the
worker holding a bridge of that account offers it. A periodic sweep refreshes this worker's
presence rows, drops rows of workers that died, and offers unfinished jobs again, so a lost
notification delays a job by one sweep and loses nothing.
"""

# Over 600 lines: one concept, the service's side of every paired PC (pairing, presence, job dispatch,
# re-offer across workers and the wire protocol's replies), whose states must be read together;
# presence rows live in bot/bridge/presence.py, and the pairing store is the next piece to move out.

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Select, and_, func, or_, select, update

from bot.bridge import protocol as wire
from bot.bridge.models import (
    BridgeDevice,
    BridgeJob,
    BridgePairFailure,
    BridgePairingCode,
    aware,
)
from bot.bridge.ports import (
    CertificateIssuer,
    IssuanceRefused,
    JobUpdate,
    SoPinProvider,
    UpdateKind,
)
from bot.bridge.presence import PRESENCE_TTL, PresenceStore
from bot.db import Database, utcnow
from bot.errors import SealbotError
from dbkit.bus import EventBus, TopicPeer

log = logging.getLogger(__name__)

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
CODE_LENGTH = 8
CODE_TTL = timedelta(minutes=10)
MAX_REJECTIONS_PER_CODE = 5
MAX_FAILURES_PER_IP = 10
FAILURE_WINDOW = timedelta(minutes=10)
HEARTBEAT_SECONDS = 20.0
SWEEP_SECONDS = 15.0
PRESENCE_REFRESH = PRESENCE_TTL / 2
TOPIC = "bridge.jobs"

FINAL_STATUSES = ("succeeded", "failed")
JOB_TYPES = {t.value for t in wire.JobType}
Clock = Callable[[], datetime]
UpdateSink = Callable[[JobUpdate], Awaitable[None]]
Sender = Callable[[str], Awaitable[None]]
Closer = Callable[[], Awaitable[None]]


class BridgeHubError(SealbotError):
    pass


class PairingRefused(BridgeHubError):
    """``reason``: invalid_code, expired, used, too_many_attempts."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NoBridgePaired(BridgeHubError):
    """The account has no paired bridge: the chat offers pairing first."""


class UnknownJob(BridgeHubError):
    pass


@dataclass(frozen=True)
class PairingCode:
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class PairedDevice:
    device_id: str
    account_id: str
    secret: str


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    name: str
    created_at: datetime
    last_seen_at: datetime | None
    online: bool


@dataclass(frozen=True)
class JobView:
    job_id: str
    job_type: str
    status: str
    stage: str | None
    attempt: int
    result: dict[str, Any] | None


@dataclass
class _Live:
    device_id: str
    account_id: str
    name: str
    signing_key: bytes
    send: Sender
    close: Closer
    conversation_ref: str | None
    connection_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sent_jobs: set[str] = field(default_factory=set)
    # the UKey serials the PC reported; None until it reports (an older bridge never does)
    tokens: set[str] | None = None
    # when this worker last wrote the connection's presence row
    seen_at: datetime | None = None

    def can_take(self, job: BridgeJob) -> bool:
        serial = job.params.get("key_serial")
        return self.tokens is None or not serial or str(serial) in self.tokens


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _spki(cert_or_csr_key: Any) -> str:
    return bytes(cert_or_csr_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hex()


class BridgeHub:
    def __init__(
        self,
        db: Database,
        *,
        issuer: CertificateIssuer,
        so_pins: SoPinProvider,
        on_job_update: UpdateSink,
        clock: Clock = utcnow,
        bus: EventBus | None = None,
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self._db = db
        self._issuer = issuer
        self._so_pins = so_pins
        self._notify = on_job_update
        self._clock = clock
        self._live: dict[str, _Live] = {}
        self.sweep_seconds = sweep_seconds
        # names this worker's presence rows
        self.worker_id = secrets.token_hex(8)
        self._presence = PresenceStore(db, self.worker_id, clock)
        # one dispatch per account at a time here: the bus, the sweep and the sockets all start them
        self._dispatching: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._peer = (
            TopicPeer(bus, TOPIC, self._heard, fallback="other workers offer them on their sweep", logger=log)
            if bus is not None
            else None
        )
        self._sweeper: asyncio.Task[None] | None = None

    # -- across workers ---------------------------------------------------------------------

    async def start(self) -> None:
        """Hear jobs committed on other workers, and sweep now and then."""
        if self._sweeper is not None:
            return
        if self._peer is not None:
            await self._peer.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="bridge-sweep")

    async def stop(self) -> None:
        if self._peer is not None:
            await self._peer.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        # this worker's sockets end with it: its PCs are offline until they reconnect elsewhere
        try:
            await self._presence.leave()
        except Exception:
            log.warning("bridge presence: this worker's rows stay until they expire", exc_info=True)

    def _announce(self, account_id: str, job_id: str | None = None, *, revoked: str | None = None) -> None:
        """After a commit that gives the account's PCs work (or takes a PC away)."""
        if self._peer is None:
            return
        data: dict[str, Any] = {"account_id": account_id, "job_id": job_id}
        if revoked is not None:
            data["revoked"] = revoked
        self._peer.announce(data)

    async def _heard(self, data: Mapping[str, Any]) -> None:
        """Another worker's ``_announce``."""
        revoked = data.get("revoked")
        if isinstance(revoked, str):
            live = self._live.pop(revoked, None)
            if live is not None:
                await live.close()
        await self._dispatch_account(str(data.get("account_id") or ""))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self.sweep()
            except Exception:
                log.exception("bridge sweep failed; the next one tries again")

    async def sweep(self) -> None:
        """Refresh this worker's presence rows, forget dead workers' rows, offer unfinished jobs."""
        lives = list(self._live.values())
        for live in lives:
            await self._keep_alive(live)
        # the sockets held now, not at the start: one attached meanwhile keeps its fresh row
        await self._presence.expire(list(self._live))
        for account_id in sorted({live.account_id for live in lives}):
            await self._dispatch_account(account_id)

    # -- pairing ----------------------------------------------------------------------------

    async def create_pairing_code(
        self, account_id: str, *, conversation_ref: str | None = None
    ) -> PairingCode:
        now = self._clock()
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        expires = now + CODE_TTL
        async with self._db.session() as session:
            session.add(
                BridgePairingCode(
                    code=code,
                    account_id=account_id,
                    conversation_ref=conversation_ref,
                    created_at=now,
                    expires_at=expires,
                    rejected_attempts=0,
                )
            )
        return PairingCode(code, expires)

    async def redeem_pairing_code(self, code: str, device_name: str, client_ip: str) -> PairedDevice:
        now = self._clock()
        normalised = "".join(ch for ch in code.upper() if ch.isalnum())
        async with self._db.session() as session:
            recent = await session.scalar(
                select(func.count())
                .select_from(BridgePairFailure)
                .where(BridgePairFailure.client_ip == client_ip, BridgePairFailure.at > now - FAILURE_WINDOW)
            )
            if (recent or 0) >= MAX_FAILURES_PER_IP:
                raise PairingRefused("too_many_attempts")
            record = await session.get(BridgePairingCode, normalised, with_for_update=True)
            reason: str | None = None
            if record is None:
                reason = "invalid_code"
            elif record.rejected_attempts >= MAX_REJECTIONS_PER_CODE:
                reason = "too_many_attempts"
            elif record.used_at is not None:
                reason = "used"
            elif aware(record.expires_at) <= now:
                reason = "expired"
            if reason is not None:
                session.add(BridgePairFailure(client_ip=client_ip, at=now))
                if record is not None:
                    record.rejected_attempts += 1
            else:
                assert record is not None
                record.used_at = now
                secret = secrets.token_urlsafe(32)
                device = BridgeDevice(
                    id=uuid.uuid4().hex,
                    account_id=record.account_id,
                    name=device_name.strip()[:64] or "PC",
                    credential_hash=_hash_secret(secret),
                    signing_key=wire.signing_key(secret).hex(),
                    conversation_ref=record.conversation_ref,
                    created_at=now,
                )
                session.add(device)
        # the refusal is raised after the commit so the attempt counters stick
        if reason is not None:
            raise PairingRefused(reason)
        await self._emit(
            UpdateKind.PAIRED,
            device.account_id,
            device.conversation_ref,
            device_id=device.id,
            device_name=device.name,
        )
        return PairedDevice(device.id, device.account_id, secret)

    async def list_devices(self, account_id: str) -> list[DeviceInfo]:
        online = {row.device_id for row in await self._presence.online(account_id)}
        async with self._db.session() as session:
            rows = await session.scalars(
                select(BridgeDevice)
                .where(BridgeDevice.account_id == account_id, BridgeDevice.revoked_at.is_(None))
                .order_by(BridgeDevice.created_at)
            )
            return [
                DeviceInfo(
                    d.id,
                    d.name,
                    aware(d.created_at),
                    aware(d.last_seen_at) if d.last_seen_at else None,
                    d.id in online,
                )
                for d in rows
            ]

    async def revoke_device(self, account_id: str, device_id: str) -> bool:
        async with self._db.session() as session:
            device = await session.get(BridgeDevice, device_id)
            if device is None or device.account_id != account_id or device.revoked_at is not None:
                return False
            device.revoked_at = self._clock()
            name, ref = device.name, device.conversation_ref
        live = self._live.pop(device_id, None)
        if live is not None:
            await live.close()
        await self._presence.closed(device_id)
        await self._emit(UpdateKind.REVOKED, account_id, ref, device_id=device_id, device_name=name)
        # its unfinished jobs go back to the queue for the account's other PCs, wherever they are
        await self._requeue_jobs_of(device_id)
        self._announce(account_id, revoked=device_id)
        await self._dispatch_account(account_id)
        return True

    @staticmethod
    def _sent_to(device_id: str) -> Select[BridgeJob]:
        return select(BridgeJob).where(BridgeJob.device_id == device_id, BridgeJob.status == "sent")

    async def _requeue_jobs_of(self, device_id: str) -> None:
        async with self._db.session() as session:
            for job in await session.scalars(self._sent_to(device_id)):
                self._back_to_queue(job)

    def _back_to_queue(self, job: BridgeJob) -> None:
        """The one way a job is offered again: pending, held by no PC, its stage forgotten (the
        next dispatch sends it to a PC that can take it, the same one if it is back)."""
        job.status, job.stage, job.device_id = "pending", None, None
        job.updated_at = self._clock()

    async def revoke_by_credential(self, device_id: str, secret: str) -> bool:
        """``ukey-bridge unpair``: the PC proves it holds the credential it gives back."""
        device = await self._device_for(device_id, secret)
        if device is None:
            return False
        return await self.revoke_device(device.account_id, device.id)

    def connected_here(self) -> int:
        """How many bridges hold a WebSocket to this worker."""
        return len(self._live)

    async def is_online(self, account_id: str) -> bool:
        """A PC of the account is connected to any worker."""
        return bool(await self._presence.online(account_id))

    # -- jobs for the chat flows ------------------------------------------------------------

    async def pcs_for_key(self, account_id: str, key_serial: str | None) -> list[tuple[str, str]]:
        """(device id, name) of the account's online PCs (on any worker) that report the seal's
        UKey, for the chat to let the user pick one when there are several."""
        return [
            (row.device_id, row.name)
            for row in await self._presence.online(account_id)
            if row.tokens is not None and key_serial in row.tokens
        ]

    async def submit_job(
        self,
        account_id: str,
        job_type: str,
        params: dict[str, Any],
        conversation_ref: str,
        *,
        device_id: str | None = None,
    ) -> str:
        """Queue a job; ``device_id``: only that PC of the account may take it (the user's pick)."""
        if job_type not in JOB_TYPES:
            raise ValueError(f"unknown bridge job type {job_type!r}")
        if not await self.list_devices(account_id):
            raise NoBridgePaired(account_id)
        now = self._clock()
        job_id = uuid.uuid4().hex
        async with self._db.session() as session:
            session.add(
                BridgeJob(
                    id=job_id,
                    account_id=account_id,
                    job_type=job_type,
                    params=dict(params),
                    conversation_ref=conversation_ref,
                    device_choice=device_id,
                    status="pending",
                    attempt=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        await self._emit(
            UpdateKind.JOB_QUEUED, account_id, conversation_ref, job_id=job_id, job_type=job_type
        )
        self._announce(account_id, job_id)
        await self._dispatch_account(account_id)
        return job_id

    async def retry_job(self, account_id: str, job_id: str) -> None:
        """Run a failed job again under the same id (a rerun resumes its key-side work)."""
        online = {row.device_id for row in await self._presence.online(account_id)}
        async with self._db.session() as session:
            job = await session.get(BridgeJob, job_id)
            if job is None or job.account_id != account_id:
                raise UnknownJob(job_id)
            held_by_absent_pc = job.status == "sent" and (job.device_id or "") not in online
            if job.status == "failed" or held_by_absent_pc:
                self._back_to_queue(job)
        self._announce(account_id, job_id)
        await self._dispatch_account(account_id)

    async def abandon_job(self, account_id: str, job_id: str) -> None:
        """The user gave the job up in the chat: it is never sent again, and whatever a PC still
        reports for it is ignored (a final job takes no more results)."""
        async with self._db.session() as session:
            job = await session.get(BridgeJob, job_id)
            if job is None or job.account_id != account_id:
                raise UnknownJob(job_id)
            freed = job.status == "sent"
            if job.status not in FINAL_STATUSES:
                job.status = "failed"
                job.result = {"outcome": "abandoned", "message": "given up in the chat"}
                job.updated_at = self._clock()
        if freed:  # the PC that held it, on whichever worker, can take the next one
            self._announce(account_id, job_id)

    async def get_job(self, account_id: str, job_id: str) -> JobView:
        async with self._db.session() as session:
            job = await session.get(BridgeJob, job_id)
            if job is None or job.account_id != account_id:
                raise UnknownJob(job_id)
            return JobView(job.id, job.job_type, job.status, job.stage, job.attempt, job.result)

    # -- the bridge's side ------------------------------------------------------------------

    async def _device_for(self, device_id: str, secret: str) -> BridgeDevice | None:
        async with self._db.session() as session:
            device = await session.get(BridgeDevice, device_id)
        if device is None or not hmac.compare_digest(device.credential_hash, _hash_secret(secret)):
            return None
        return device

    async def authenticate(self, hello: wire.Hello) -> BridgeDevice | str:
        """The device, or the AuthFailed reason."""
        device = await self._device_for(hello.device_id, hello.secret)
        if device is None:
            return "bad_credential"
        if device.revoked_at is not None:
            return "revoked"
        return device

    async def attach(self, device: BridgeDevice, send: Sender, close: Closer) -> wire.Welcome:
        previous = self._live.pop(device.id, None)
        if previous is not None:
            await previous.close()  # the same PC reconnected before its old socket timed out
        self._live[device.id] = _Live(
            device.id,
            device.account_id,
            device.name,
            bytes.fromhex(device.signing_key),
            send,
            close,
            device.conversation_ref,
        )
        await self._touch(device.id)
        await self._emit(
            UpdateKind.ONLINE,
            device.account_id,
            device.conversation_ref,
            device_id=device.id,
            device_name=device.name,
        )
        return wire.Welcome(
            device_id=device.id,
            account_id=device.account_id,
            server_time=self._clock().timestamp(),
            heartbeat_seconds=HEARTBEAT_SECONDS,
        )

    async def after_welcome(self, device_id: str) -> None:
        live = self._live.get(device_id)
        if live is not None:
            await self._dispatch_account(live.account_id)

    async def detach(self, device_id: str, send: Sender) -> None:
        live = self._live.get(device_id)
        if live is None or live.send is not send:
            return  # already replaced by a newer connection of the same PC
        del self._live[device_id]
        await self._touch(device_id)
        await self._presence.closed(device_id, live.connection_id)
        await self._emit(
            UpdateKind.OFFLINE,
            live.account_id,
            live.conversation_ref,
            device_id=device_id,
            device_name=live.name,
        )
        await self._tell_interrupted(live)

    async def _tell_interrupted(self, live: _Live) -> None:
        """A PC that drops mid-job: the job stays with it (a reconnect resumes it), and the chat
        hears it now, with 重试 to hand it to any PC that is online."""
        async with self._db.session() as session:
            jobs = list(await session.scalars(self._sent_to(live.device_id)))
        for job in jobs:
            await self._emit_job(
                UpdateKind.JOB_INTERRUPTED,
                job,
                device_id=live.device_id,
                outcome=wire.Outcome.CONNECTION_LOST.value,
                reason="the PC went offline during the job",
            )

    async def _seen(self, live: _Live) -> None:
        now = self._clock()
        await self._presence.seen(
            device_id=live.device_id,
            account_id=live.account_id,
            name=live.name,
            connection_id=live.connection_id,
            tokens=live.tokens,
        )
        live.seen_at = now

    async def _keep_alive(self, live: _Live) -> None:
        """On a heartbeat or a sweep: the PC is still there. Its rows are written only when the
        presence row is half-way to expiring (the sweep comes every ``SWEEP_SECONDS``, well
        within the other half), not twice every 20 s for every PC."""
        if live.seen_at is None or self._clock() - live.seen_at >= PRESENCE_REFRESH:
            await self._touch(live.device_id)

    async def _touch(self, device_id: str) -> None:
        async with self._db.session() as session:
            device = await session.get(BridgeDevice, device_id)
            if device is not None:
                device.last_seen_at = self._clock()
        live = self._live.get(device_id)
        if live is not None:
            await self._seen(live)

    async def handle_frame(self, device_id: str, frame: str) -> None:
        live = self._live.get(device_id)
        if live is None:
            return
        try:
            message = wire.decode(frame)
        except wire.ProtocolError as exc:
            log.warning("bridge %s sent a bad frame: %s", device_id, exc)
            return
        if isinstance(message, wire.Heartbeat):
            await self._keep_alive(live)
        elif isinstance(message, wire.TokenReport):
            changed = live.tokens != set(message.serials)
            live.tokens = set(message.serials)
            if changed:  # a key was inserted: a job waiting for it can go now
                await self._seen(live)
                await self._dispatch_account(live.account_id)
        elif isinstance(message, wire.JobProgress):
            await self._on_progress(live, message)
        elif isinstance(message, wire.CertificateRequest):
            await self._on_csr(live, message)
        elif isinstance(message, wire.JobResult):
            await self._on_result(live, message)
        elif isinstance(message, wire.JobRefused):
            await self._finish(
                live, message.job_id, "refused", {"reason": message.reason}, reason=message.reason
            )

    async def _job_of(self, live: _Live, job_id: str) -> BridgeJob | None:
        async with self._db.session() as session:
            job = await session.get(BridgeJob, job_id)
        if job is None or job.device_id != live.device_id or job.status in FINAL_STATUSES:
            return None
        return job

    async def _on_progress(self, live: _Live, progress: wire.JobProgress) -> None:
        job = await self._job_of(live, progress.job_id)
        if job is None:
            return
        async with self._db.session() as session:
            row = await session.get(BridgeJob, job.id)
            if row is not None:
                row.stage, row.updated_at = progress.stage, self._clock()
        await self._emit_job(
            UpdateKind.JOB_STAGE,
            job,
            device_id=live.device_id,
            stage=progress.stage,
            data=dict(progress.detail),
        )

    async def _on_csr(self, live: _Live, request: wire.CertificateRequest) -> None:
        job = await self._job_of(live, request.job_id)
        if job is None or job.job_type not in (wire.JobType.RENEWAL, wire.JobType.CHANGE):
            await live.send(wire.IssueFailed(job_id=request.job_id, reason="no such job").encode())
            return
        try:
            csr_der = wire.b64decode(request.csr_der)
            csr = x509.load_der_x509_csr(csr_der)
            valid = csr.is_signature_valid
        except (ValueError, wire.ProtocolError):
            valid = False
        if not valid:
            await live.send(
                wire.IssueFailed(job_id=job.id, reason="the certificate request is not valid").encode()
            )
            return
        spki = _spki(csr.public_key())
        issued = job.issued
        if issued is None or issued.get("spki") != spki:
            try:
                credential = await self._issuer.issue(
                    job.account_id, str(job.params.get("order_id", "")), csr_der
                )
            except IssuanceRefused as exc:
                await live.send(wire.IssueFailed(job_id=job.id, reason=exc.reason).encode())
                return
            issued = {
                "spki": spki,
                "cert_der": wire.b64encode(credential.cert_der),
                "seseal_der": wire.b64encode(credential.seseal_der),
                "chain_pem": credential.chain_pem,
                "cert_sha256": hashlib.sha256(credential.cert_der).hexdigest(),
            }
            # remembered per key: a rerun after a dropped link gets the same certificate back
            async with self._db.session() as session:
                row = await session.get(BridgeJob, job.id)
                if row is not None:
                    row.issued, row.updated_at = issued, self._clock()
        message = wire.with_signature(
            wire.CertificateIssued(
                sig="",
                job_id=job.id,
                cert_der=issued["cert_der"],
                seseal_der=issued["seseal_der"],
                chain_pem=issued["chain_pem"],
            ),
            live.signing_key,
        )
        await live.send(message.encode())

    async def _on_result(self, live: _Live, result: wire.JobResult) -> None:
        job = await self._job_of(live, result.job_id)
        if job is None:
            return
        outcome, reason = result.outcome, None
        if outcome == wire.Outcome.SUCCEEDED and job.job_type in (wire.JobType.RENEWAL, wire.JobType.CHANGE):
            written = dict(result.data.get("new_certificate") or {}).get("sha256")
            if job.issued is None or written != job.issued.get("cert_sha256"):
                outcome, reason = (
                    wire.Outcome.CERT_MISMATCH,
                    "the key holds a certificate the service did not issue",
                )
        payload = {
            "outcome": outcome,
            "message": result.message,
            "tries_left": result.tries_left,
            "final_try": result.final_try,
            "data": result.data,
        }
        await self._finish(live, job.id, outcome, payload, reason=reason)

    async def _finish(
        self, live: _Live, job_id: str, outcome: str, payload: dict[str, Any], *, reason: str | None = None
    ) -> None:
        async with self._db.session() as session:
            job = await session.get(BridgeJob, job_id)
            if job is None or job.device_id != live.device_id or job.status in FINAL_STATUSES:
                return
            job.status = "succeeded" if outcome == wire.Outcome.SUCCEEDED else "failed"
            job.result = {**payload, "outcome": outcome}
            job.updated_at = self._clock()
        await self._emit_job(
            UpdateKind.JOB_SUCCEEDED if job.status == "succeeded" else UpdateKind.JOB_FAILED,
            job,
            device_id=live.device_id,
            outcome=outcome,
            reason=reason or payload.get("reason"),
            message=payload.get("message"),
            tries_left=payload.get("tries_left"),
            final_try=bool(payload.get("final_try", False)),
            data=dict(payload.get("data") or {}),
        )
        await self._dispatch_account(job.account_id)

    async def _dispatch_account(self, account_id: str) -> None:
        """Send the oldest unfinished job to an online bridge of the account, one at a time per PC.

        Offering is idempotent: a job goes out once per connection (``sent_jobs``), and a
        pending job is claimed by a conditional update, so two workers that both hold a PC of
        the account never send it twice."""
        if not any(live.account_id == account_id for live in self._live.values()):
            return
        async with self._dispatching[account_id]:
            await self._dispatch_locked(account_id)

    async def _dispatch_locked(self, account_id: str) -> None:
        lives = [live for live in self._live.values() if live.account_id == account_id]
        if not lives:
            return
        async with self._db.session() as session:
            jobs = list(
                await session.scalars(
                    select(BridgeJob)
                    .where(BridgeJob.account_id == account_id, BridgeJob.status.in_(("pending", "sent")))
                    .order_by(BridgeJob.created_at)
                )
            )
        busy = {j.device_id for j in jobs if j.status == "sent"}
        for job in jobs:
            if job.status == "sent":
                # a job stays with the PC it went to; a reconnected PC gets it again once
                holder = self._live.get(job.device_id or "")
                if holder is not None and job.id not in holder.sent_jobs:
                    await self._send_job(holder, job)
                continue
            # a PC that reports the seal's key first; one that reports other keys never gets it
            free = [
                live
                for live in lives
                if live.device_id not in busy
                and live.can_take(job)
                and job.device_choice in (None, live.device_id)
            ]
            free.sort(key=lambda live: live.tokens is None)
            if not free:
                continue  # waits for a PC with the key
            await self._send_job(free[0], job)
            busy.add(free[0].device_id)

    async def _send_job(self, live: _Live, job: BridgeJob) -> None:
        now = self._clock()
        # the claim: pending (for this PC or any), or already this PC's; another worker's PC
        # that claimed it first wins, and this offer is not made
        async with self._db.session() as session:
            claimed = await session.execute(
                update(BridgeJob)
                .where(
                    BridgeJob.id == job.id,
                    or_(
                        BridgeJob.status == "pending",
                        and_(BridgeJob.status == "sent", BridgeJob.device_id == live.device_id),
                    ),
                )
                .values(
                    status="sent", device_id=live.device_id, attempt=BridgeJob.attempt + 1, updated_at=now
                )
                .returning(BridgeJob.attempt)
            )
            attempt = claimed.scalar_one_or_none()
        if attempt is None:
            return
        first_send = job.status == "pending"
        params = dict(job.params)
        if job.job_type == wire.JobType.UNLOCK:
            try:
                params["so_pin"] = await self._so_pins.so_pin_for(
                    job.account_id, str(params.get("key_serial", "")), str(params.get("order_id", ""))
                )
            except SealbotError as exc:
                # the platform will not release the SO PIN: that job fails, the PC stays online
                await self._fail_unsent(job, wire.Outcome.SO_PIN_REJECTED.value, str(exc))
                return
        offer = wire.with_signature(
            wire.JobOffer(
                sig="",
                job_id=job.id,
                account_id=job.account_id,
                device_id=live.device_id,
                job_type=job.job_type,
                params=params,
                nonce=secrets.token_hex(16),
                issued_at=now.timestamp(),
                attempt=attempt,
            ),
            live.signing_key,
        )
        live.sent_jobs.add(job.id)
        await live.send(offer.encode())
        if first_send:
            await self._emit_job(UpdateKind.JOB_STARTED, job, device_id=live.device_id, device_name=live.name)

    async def _fail_unsent(self, job: BridgeJob, outcome: str, reason: str) -> None:
        async with self._db.session() as session:
            row = await session.get(BridgeJob, job.id)
            if row is None or row.status in FINAL_STATUSES:
                return
            row.status = "failed"
            row.result = {"outcome": outcome, "reason": reason, "message": reason}
            row.updated_at = self._clock()
        await self._emit_job(UpdateKind.JOB_FAILED, job, outcome=outcome, reason=reason)

    async def _emit_job(self, kind: UpdateKind, job: BridgeJob, **fields: Any) -> None:
        """News of ``job`` for the conversation that submitted it."""
        await self._emit(
            kind, job.account_id, job.conversation_ref, job_id=job.id, job_type=job.job_type, **fields
        )

    async def _emit(self, kind: UpdateKind, account_id: str, ref: str | None, **fields: Any) -> None:
        await self._notify(
            JobUpdate(kind=kind, account_id=account_id, conversation_ref=ref, at=self._clock(), **fields)
        )
