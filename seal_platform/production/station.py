"""The production station: where a new seal is written onto a blank UKey.

Production asks a station for one key per seal. The station initialises a blank token under an
SO PIN the platform generated (and keeps, sealed), sets the initial user PIN, generates the key
pair on the token, sends a certificate request, and writes the certificate and the SESeal the
platform made for that request; it reads both back, proves the private key signs for the
certificate, and reports the token's serial as PKCS#11 gives it. Only then does production
record anything, in the same transaction as the order's move to ``in_production``, so a failed
or interrupted run leaves no seal recorded; a rerun of the same job resumes the same token.

Stations (``PLATFORM_PRODUCTION_STATION``):

- ``remote``: staff's ``ukey-bridge`` on the production PC, paired from the console
  (``seal_platform.production.station_hub``);
- ``local``: the PKCS#11 module ``PLATFORM_STATION_PKCS11_MODULE`` on the platform's own host;
- ``demo``: a simulated blank UKey per seal (the bridge's in-memory token), so the embedded
  default produces seals without hardware; refused in production mode, like the sandbox payment.

The station runs the bridge's own job runner (``ukey_bridge.jobs``): one implementation of the
token steps for the station and the user's PC.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from seal_platform.errors import RuleViolation
from seal_platform.production.progress import StepSink, no_progress
from ukey_bridge.backend import TokenBackend
from ukey_bridge.errors import IssuanceFailed
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.jobs import IssuedCertificate, Job, JobRunner
from ukey_bridge.outcomes import JobReport
from ukey_bridge.pin_prompt import JobExplanation, PinRequest
from ukey_bridge.protocol import JobType, Outcome, Stage

if TYPE_CHECKING:
    from seal_platform.services import PlatformServices

SO_PIN_DIGITS = 10


@dataclass(frozen=True)
class KeyOrder:
    """One key to make: ``job_id`` is stable across retries of the same seal's production."""

    job_id: str
    label: str
    so_pin: str
    subject: dict[str, str]
    # the staff member who asked: a remote production runs on their own paired station only
    staff: str | None = None


@dataclass(frozen=True)
class ProducedKey:
    key_serial: str
    certificate_sha256: str
    seseal_sha256: str


Certify = Callable[[bytes], Awaitable[IssuedCertificate]]


class StationFailed(RuleViolation):
    """The station could not write the seal; ``code`` says why (missing, non-blank, ...)."""


_FAILURE_CODES = {
    Outcome.NO_KEY: "station_no_blank_key",
    Outcome.KEY_NOT_BLANK: "station_key_not_blank",
    Outcome.WRONG_KEY: "station_wrong_key",
    Outcome.KEY_REMOVED: "station_key_removed",
    Outcome.CERT_MISMATCH: "station_write_unverified",
    Outcome.ISSUANCE_FAILED: "station_issuance_failed",
}


def failure_of(report: JobReport) -> StationFailed:
    code = _FAILURE_CODES.get(report.outcome, "station_failed")
    return StationFailed(report.message, code=code, outcome=report.outcome.value, **report.data)


class ProductionStation(Protocol):
    async def produce(
        self, order: KeyOrder, certify: Certify, progress: StepSink = no_progress
    ) -> ProducedKey:
        """Write a new seal on a blank key, telling ``progress`` each step it starts (one of
        ``progress.STEPS``); raises ``StationFailed``."""
        ...


def step_of(detail: dict[str, Any] | None) -> str | None:
    """The production step a progress report of the bridge's ``produce`` job names."""
    step = (detail or {}).get("step")
    return str(step) if step else None


def so_pin_for(services: PlatformServices, job_id: str) -> str:
    """The SO PIN of the key made by ``job_id``: derived under the platform's secret, so a rerun
    of an interrupted job can log in to the key the first run initialised."""
    secret = services.settings.secret_key.get_secret_value().encode()
    digest = hmac.new(secret, f"so-pin:{job_id}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest, "big") % 10**SO_PIN_DIGITS).zfill(SO_PIN_DIGITS)


def token_label(job_id: str) -> str:
    """The label of the key a job makes: stable for reruns, 32 characters at most (CK_TOKEN_INFO)."""
    return "sealbot " + hashlib.sha256(job_id.encode()).hexdigest()[:12]


class _NoPeople:
    """The station's prompt: staff started the job in the console, and no PIN is typed."""

    async def confirm(self, explanation: JobExplanation) -> bool:
        return True

    async def ask_pin(self, request: PinRequest) -> str | None:
        return None

    async def notify(self, text: str) -> None:
        return None


class _CertifyLink:
    def __init__(self, certify: Certify, progress: StepSink) -> None:
        self._certify = certify
        self._progress = progress

    async def progress(self, job_id: str, stage: Stage, detail: dict[str, Any] | None = None) -> None:
        step = step_of(detail)
        if step is not None:
            self._progress(step)

    async def request_certificate(self, job_id: str, csr_der: bytes) -> IssuedCertificate:
        try:
            return await self._certify(csr_der)
        except RuleViolation as exc:
            raise IssuanceFailed(exc.message) from exc


class RunnerStation:
    """A station that runs the production job on a token backend in this process."""

    def __init__(self, backend_factory: Callable[[], TokenBackend]) -> None:
        self._runner = JobRunner(backend_factory, _NoPeople())

    async def produce(
        self, order: KeyOrder, certify: Certify, progress: StepSink = no_progress
    ) -> ProducedKey:
        job = Job(
            order.job_id,
            JobType.PRODUCE,
            {"label": order.label, "so_pin": order.so_pin, "subject": order.subject},
        )
        report = await self._runner.run(job, _CertifyLink(certify, progress))
        if not report.succeeded:
            raise failure_of(report)
        return ProducedKey(
            key_serial=str(report.data["key_serial"]),
            certificate_sha256=str(report.data["new_certificate"]["sha256"]),
            seseal_sha256=str(report.data["seseal_sha256"]),
        )


class DemoBlankKeys:
    """A fresh simulated blank key for every production job (the embedded default)."""

    def __init__(self) -> None:
        self._count = 0

    def __call__(self) -> TokenBackend:
        self._count += 1
        serial = f"DEMO{self._count:012d}"
        return FakeBackend([FakeToken(serial=serial, label="", user_pin="", so_pin="", initialised=False)])
