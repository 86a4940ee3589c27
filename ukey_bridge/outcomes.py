"""What a job ended with, in a code the chat acts on and words the person at the PC reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ukey_bridge.errors import (
    BridgeError,
    CertificateMismatch,
    ConnectionLost,
    IssuanceFailed,
    NoTokenPresent,
    PinEntryCancelled,
    PinIncorrect,
    PinLengthInvalid,
    PinLocked,
    TokenNotBlank,
    TokenRemoved,
    WrongToken,
)
from ukey_bridge.protocol import JobResult, Outcome


@dataclass(frozen=True)
class JobReport:
    outcome: Outcome
    message: str
    tries_left: int | None = None
    final_try: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED

    def to_result(self, job_id: str) -> JobResult:
        return JobResult(
            job_id=job_id,
            outcome=self.outcome.value,
            message=self.message,
            tries_left=self.tries_left,
            final_try=self.final_try,
            data=self.data,
        )


def wrong_pin_message(exc: PinIncorrect) -> str:
    if exc.final_try or exc.tries_left == 1:
        return "The PIN is wrong. One try is left: another wrong PIN locks the key."
    if exc.tries_left is not None:
        return f"The PIN is wrong. {exc.tries_left} tries are left."
    if exc.count_low:
        return "The PIN is wrong, and the key says only a few tries are left."
    return "The PIN is wrong."


def report_for_error(exc: BridgeError) -> JobReport:
    """Plain words for every way a job can stop; the key is never left half-written."""
    if isinstance(exc, NoTokenPresent):
        return JobReport(Outcome.NO_KEY, "No UKey is inserted. Insert the key and run the job again.")
    if isinstance(exc, WrongToken):
        return JobReport(
            Outcome.WRONG_KEY,
            f"The inserted UKey is not the one for this seal (expected serial {exc.expected_serial}).",
            data={"expected_serial": exc.expected_serial, "found_serials": exc.found_serials},
        )
    if isinstance(exc, TokenNotBlank):
        return JobReport(
            Outcome.KEY_NOT_BLANK,
            "The inserted UKey is not blank. Insert a new, blank key and run the job again.",
            data={"found_serials": exc.found_serials},
        )
    if isinstance(exc, TokenRemoved):
        return JobReport(
            Outcome.KEY_REMOVED,
            "The UKey was removed during the job. The key still works; insert it and run the job again.",
        )
    if isinstance(exc, PinIncorrect):
        return JobReport(
            Outcome.WRONG_PIN, wrong_pin_message(exc), tries_left=exc.tries_left, final_try=exc.final_try
        )
    if isinstance(exc, PinLocked):
        return JobReport(
            Outcome.PIN_LOCKED, "The UKey PIN is locked after too many wrong tries. An unlock is needed.", 0
        )
    if isinstance(exc, PinLengthInvalid):
        return JobReport(Outcome.PIN_INVALID, "The key does not accept a PIN of that length.")
    if isinstance(exc, PinEntryCancelled):
        return JobReport(Outcome.DECLINED, f"The job was not run on the PC: {exc}.")
    if isinstance(exc, ConnectionLost):
        return JobReport(
            Outcome.CONNECTION_LOST,
            "The connection to the service dropped. The key still works; the job resumes when it is back.",
        )
    if isinstance(exc, IssuanceFailed):
        return JobReport(Outcome.ISSUANCE_FAILED, f"The service could not issue the certificate: {exc}.")
    if isinstance(exc, CertificateMismatch):
        return JobReport(
            Outcome.CERT_MISMATCH, "The issued certificate does not match the new key; the old one is kept."
        )
    return JobReport(Outcome.FAILED, f"The job failed: {exc}.")
