"""The bridge's connection to the service: one outbound WebSocket, jobs in, results out.

Jobs run beside the connection, not inside it: a link that drops while the person is typing a
PIN does not cancel the prompt. Only a step that needs the service (issuing the certificate)
fails with ``ConnectionLost``; the service then delivers the job again after reconnecting and
the rerun finishes it. Results that could not be sent wait for the next connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import platform
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ukey_bridge.backoff import Backoff
from ukey_bridge.credential import DeviceCredential
from ukey_bridge.errors import (
    UNPAIRED_REASONS,
    BridgeError,
    ConnectionLost,
    CredentialRevoked,
    IssuanceFailed,
    ProtocolError,
)
from ukey_bridge.jobs import IssuedCertificate, Job, JobRunner
from ukey_bridge.protocol import (
    JOB_MAX_AGE_SECONDS,
    AuthFailed,
    CertificateIssued,
    CertificateRequest,
    Heartbeat,
    Hello,
    IssueFailed,
    JobOffer,
    JobProgress,
    JobRefused,
    JobResult,
    JobType,
    Outcome,
    RefusalReason,
    Stage,
    TokenReport,
    Welcome,
    b64decode,
    b64encode,
    decode,
    signing_key,
)

log = logging.getLogger(__name__)

CLIENT_VERSION = "1"
ISSUANCE_TIMEOUT_SECONDS = 120.0
Connector = Callable[[str], Awaitable[ClientConnection]]


async def _connect(url: str) -> ClientConnection:
    return await connect(url, ping_interval=20, ping_timeout=20, max_size=4 * 1024 * 1024)


class OfferChecker:
    """Refuses jobs that were tampered with, replayed, stale, or meant for someone else."""

    def __init__(self, credential: DeviceCredential, *, clock: Callable[[], float] = time.time) -> None:
        self._credential = credential
        self._key = signing_key(credential.secret)
        self._clock = clock
        self._seen: OrderedDict[str, None] = OrderedDict()

    def check(self, offer: JobOffer) -> RefusalReason | None:
        if not offer.signature_valid(self._key):
            return RefusalReason.BAD_SIGNATURE
        if offer.account_id != self._credential.account_id:
            return RefusalReason.OTHER_ACCOUNT
        if offer.device_id != self._credential.device_id:
            return RefusalReason.OTHER_DEVICE
        if abs(self._clock() - offer.issued_at) > JOB_MAX_AGE_SECONDS:
            return RefusalReason.STALE
        if offer.nonce in self._seen:
            return RefusalReason.REPLAYED
        if offer.job_type not in {t.value for t in JobType}:
            return RefusalReason.UNKNOWN_JOB_TYPE
        self._seen[offer.nonce] = None
        while len(self._seen) > 1000:
            self._seen.popitem(last=False)
        return None

    def issued_valid(self, issued: CertificateIssued) -> bool:
        return issued.signature_valid(self._key)


@dataclass
class BridgeStatus:
    online: bool = False
    last_connected: float | None = None
    last_error: str | None = None
    current_job: str | None = None


class BridgeClient:
    def __init__(
        self,
        credential: DeviceCredential,
        runner: JobRunner,
        *,
        connector: Connector = _connect,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        status_file: Path | None = None,
        host_name: str | None = None,
        token_serials: Callable[[], Awaitable[list[str]]] | None = None,
        heartbeat_seconds: float = 20.0,
    ) -> None:
        self.credential = credential
        self._runner = runner
        self._connector = connector
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self._status_file = status_file
        self._host_name = host_name or platform.node() or "PC"
        self._checker = OfferChecker(credential, clock=clock)
        self._token_serials = token_serials
        self._heartbeat_seconds = heartbeat_seconds
        self._connection: ClientConnection | None = None
        self._issuance: dict[str, asyncio.Future[IssuedCertificate]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._unsent: list[JobResult] = []
        self._redelivered: set[str] = set()
        self.status = BridgeStatus()
        self.connected = asyncio.Event()

    # -- connection lifecycle ---------------------------------------------------------------

    async def run_forever(self) -> None:
        """Stay connected until cancelled; a revoked credential ends it with CredentialRevoked."""
        while True:
            try:
                await self.run_once()
            except CredentialRevoked:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, ProtocolError, TimeoutError) as exc:
                self.status.last_error = str(exc) or type(exc).__name__
                log.info("bridge connection lost: %s", self.status.last_error)
            delay = self._backoff.next_delay()
            await self._sleep(delay)

    async def run_once(self) -> None:
        """One connection: authenticate, then serve jobs until the link closes."""
        try:
            connection = await self._connector(self.credential.websocket_url)
        except InvalidURI as exc:
            raise ProtocolError(str(exc)) from exc
        try:
            await self._authenticate(connection)
            self._backoff.reset()
            self._set_online(connection)
            heartbeat = asyncio.create_task(self._heartbeats(connection, self._heartbeat_seconds))
            try:
                await self._report_tokens(connection)
                for result in list(self._unsent):
                    await connection.send(result.encode())
                    self._unsent.remove(result)
                async for frame in connection:
                    await self._handle(frame)
            finally:
                heartbeat.cancel()
        finally:
            self._set_offline()
            await connection.close()

    async def _authenticate(self, connection: ClientConnection) -> None:
        hello = Hello(
            device_id=self.credential.device_id,
            secret=self.credential.secret,
            client_version=CLIENT_VERSION,
            host_name=self._host_name,
        )
        await connection.send(hello.encode())
        reply = decode(await asyncio.wait_for(connection.recv(), timeout=30))
        if isinstance(reply, AuthFailed):
            raise CredentialRevoked(
                "The service no longer accepts this bridge (it was unpaired). Pair it again from the chat."
                if reply.reason in UNPAIRED_REASONS
                else f"The service refused this bridge: {reply.reason}",
                reason=reply.reason,
            )
        if not isinstance(reply, Welcome) or reply.account_id != self.credential.account_id:
            raise ProtocolError("the service did not welcome this bridge")

    async def _heartbeats(self, connection: ClientConnection, every: float) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(every)
                await connection.send(Heartbeat(sent_at=self._clock()).encode())
                await self._report_tokens(connection)

    async def _report_tokens(self, connection: ClientConnection) -> None:
        """Tell the service which UKeys are inserted, so it sends a key's jobs to this PC.

        Not while a job runs: that job has the module open, and its own result says what it saw.
        """
        if self._token_serials is None or self._running:
            return
        try:
            serials = await self._token_serials()
        except BridgeError as exc:
            log.info("cannot list the UKeys: %s", exc)
            serials = []
        await connection.send(TokenReport(serials=serials).encode())

    def _set_online(self, connection: ClientConnection) -> None:
        self._connection = connection
        self.status.online = True
        self.status.last_connected = self._clock()
        self.status.last_error = None
        self.connected.set()
        self._write_status()

    def _set_offline(self) -> None:
        self._connection = None
        self.status.online = False
        self.connected.clear()
        for future in self._issuance.values():
            if not future.done():
                future.set_exception(ConnectionLost("the connection dropped"))
        self._issuance.clear()
        self._write_status()

    def _write_status(self) -> None:
        if self._status_file is None:
            return
        with contextlib.suppress(OSError):
            self._status_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._status_file.write_text(json.dumps(self.status.__dict__))

    # -- inbound frames ---------------------------------------------------------------------

    async def _handle(self, frame: str | bytes) -> None:
        try:
            message = decode(frame)
        except ProtocolError as exc:
            log.warning("ignoring a frame: %s", exc)
            return
        if isinstance(message, JobOffer):
            await self._on_offer(message)
        elif isinstance(message, CertificateIssued):
            self._on_issued(message)
        elif isinstance(message, IssueFailed):
            future = self._issuance.pop(message.job_id, None)
            if future is not None and not future.done():
                future.set_exception(IssuanceFailed(message.reason))

    async def _on_offer(self, offer: JobOffer) -> None:
        refusal = self._checker.check(offer)
        if refusal is None and offer.job_id in self._running:
            # delivered again after a reconnect while the old run still winds down
            self._redelivered.add(offer.job_id)
            return
        if refusal is None and self._running:
            refusal = RefusalReason.BUSY
        if refusal is not None:
            log.warning("refusing job %s: %s", offer.job_id, refusal.value)
            await self.send(JobRefused(job_id=offer.job_id, reason=refusal.value).encode())
            return
        job = Job(offer.job_id, JobType(offer.job_type), dict(offer.params))
        task = asyncio.create_task(self._run_job(job))
        self._running[job.job_id] = task

    def _on_issued(self, issued: CertificateIssued) -> None:
        future = self._issuance.pop(issued.job_id, None)
        if future is None or future.done():
            return
        if not self._checker.issued_valid(issued):
            future.set_exception(IssuanceFailed("the issued certificate failed its integrity check"))
            return
        future.set_result(
            IssuedCertificate(b64decode(issued.cert_der), b64decode(issued.seseal_der), issued.chain_pem)
        )

    async def _run_job(self, job: Job) -> None:
        self.status.current_job = job.job_id
        try:
            while True:
                self._redelivered.discard(job.job_id)
                report = await self._runner.run(job, _Link(self))
                if report.outcome is not Outcome.CONNECTION_LOST:
                    break
                # the service still holds the job and sends it again on reconnect; a lost link
                # is not an answer, so it is not reported
                if job.job_id not in self._redelivered:
                    return
            result = report.to_result(job.job_id)
            if not await self.send(result.encode()):
                self._unsent.append(result)
        finally:
            self._running.pop(job.job_id, None)
            self.status.current_job = None

    # -- outbound ---------------------------------------------------------------------------

    async def send(self, text: str) -> bool:
        connection = self._connection
        if connection is None:
            return False
        try:
            await connection.send(text)
        except ConnectionClosed:
            return False
        return True

    async def request_certificate(self, job_id: str, csr_der: bytes) -> IssuedCertificate:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IssuedCertificate] = loop.create_future()
        self._issuance[job_id] = future
        if not await self.send(CertificateRequest(job_id=job_id, csr_der=b64encode(csr_der)).encode()):
            self._issuance.pop(job_id, None)
            raise ConnectionLost("the bridge is offline")
        try:
            return await asyncio.wait_for(future, ISSUANCE_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            raise ConnectionLost("the service did not answer in time") from exc
        finally:
            self._issuance.pop(job_id, None)

    async def wait_idle(self) -> None:
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)


class _Link:
    """The ServerLink a running job sees."""

    def __init__(self, client: BridgeClient) -> None:
        self._client = client

    async def progress(self, job_id: str, stage: Stage, detail: dict[str, Any] | None = None) -> None:
        # progress is news for the chat; losing one while offline is harmless
        await self._client.send(JobProgress(job_id=job_id, stage=stage.value, detail=detail or {}).encode())

    async def request_certificate(self, job_id: str, csr_der: bytes) -> IssuedCertificate:
        return await self._client.request_certificate(job_id, csr_der)
