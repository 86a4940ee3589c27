"""What the bridge hub needs from the rest of the system, and what it tells it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.errors import SealbotError


@dataclass(frozen=True)
class IssuedCredential:
    cert_der: bytes
    seseal_der: bytes
    chain_pem: str


class IssuanceRefused(SealbotError):
    """The platform will not issue for this request; ``reason`` is shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CertificateIssuer(Protocol):
    async def issue(self, account_id: str, order_id: str, csr_der: bytes) -> IssuedCredential:
        """A certificate for the request's key and a new SESeal listing it.

        The CSR's signature is already verified. Raises ``IssuanceRefused``.
        """
        ...


class SoPinProvider(Protocol):
    async def so_pin_for(self, account_id: str, key_serial: str, order_id: str) -> str:
        """The issuer's SO PIN for a paid unlock job; it goes to the bridge, never to a chat."""
        ...


class UpdateKind(StrEnum):
    PAIRED = "paired"
    REVOKED = "revoked"
    ONLINE = "online"
    OFFLINE = "offline"
    JOB_QUEUED = "job_queued"
    JOB_STARTED = "job_started"
    JOB_STAGE = "job_stage"  # awaiting confirmation / PIN on the PC, working, ...
    JOB_SUCCEEDED = "job_succeeded"
    JOB_FAILED = "job_failed"
    # the PC dropped while the job was with it: it resumes if that PC returns, or 重试 re-offers it
    JOB_INTERRUPTED = "job_interrupted"


@dataclass(frozen=True)
class JobUpdate:
    """One piece of news for the chat; ``conversation_ref`` says which conversation."""

    kind: UpdateKind
    account_id: str
    conversation_ref: str | None
    at: datetime
    job_id: str | None = None
    job_type: str | None = None
    device_id: str | None = None
    device_name: str | None = None
    stage: str | None = None
    outcome: str | None = None  # ukey_bridge Outcome codes, plus "refused" and "cert_mismatch"
    reason: str | None = None
    message: str | None = None
    tries_left: int | None = None
    final_try: bool = False
    data: dict[str, Any] = field(default_factory=dict)
