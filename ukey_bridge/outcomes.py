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
from ukey_bridge.i18n import CHINESE, Texts
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


def wrong_pin_message(exc: PinIncorrect, t: Texts = CHINESE) -> str:
    if exc.final_try or exc.tries_left == 1:
        return t("err_wrong_pin_final")
    if exc.tries_left is not None:
        return t("err_wrong_pin_count", tries=exc.tries_left)
    if exc.count_low:
        return t("err_wrong_pin_low")
    return t("err_wrong_pin")


def report_for_error(exc: BridgeError, t: Texts = CHINESE) -> JobReport:
    """Plain words for every way a job can stop; the key is never left half-written."""
    if isinstance(exc, NoTokenPresent):
        return JobReport(Outcome.NO_KEY, t("err_no_key"))
    if isinstance(exc, WrongToken):
        return JobReport(
            Outcome.WRONG_KEY,
            t("err_wrong_key", serial=exc.expected_serial),
            data={"expected_serial": exc.expected_serial, "found_serials": exc.found_serials},
        )
    if isinstance(exc, TokenNotBlank):
        return JobReport(Outcome.KEY_NOT_BLANK, t("err_not_blank"), data={"found_serials": exc.found_serials})
    if isinstance(exc, TokenRemoved):
        return JobReport(Outcome.KEY_REMOVED, t("err_removed"))
    if isinstance(exc, PinIncorrect):
        return JobReport(
            Outcome.WRONG_PIN, wrong_pin_message(exc, t), tries_left=exc.tries_left, final_try=exc.final_try
        )
    if isinstance(exc, PinLocked):
        return JobReport(Outcome.PIN_LOCKED, t("err_locked"), 0)
    if isinstance(exc, PinLengthInvalid):
        return JobReport(Outcome.PIN_INVALID, t("err_pin_length"))
    if isinstance(exc, PinEntryCancelled):
        return JobReport(Outcome.DECLINED, t("err_declined"))
    if isinstance(exc, ConnectionLost):
        return JobReport(Outcome.CONNECTION_LOST, t("err_connection"))
    if isinstance(exc, IssuanceFailed):
        return JobReport(Outcome.ISSUANCE_FAILED, t("err_issuance", reason=exc))
    if isinstance(exc, CertificateMismatch):
        return JobReport(Outcome.CERT_MISMATCH, t("err_mismatch"))
    return JobReport(Outcome.FAILED, t("err_failed", reason=exc))
