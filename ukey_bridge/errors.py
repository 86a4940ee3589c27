"""The bridge's exception tree.

Backend adapters translate library errors into these (``raise ... from exc``); the job runner
turns them into outcome codes the chat understands.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error raised by the bridge."""


class TokenError(BridgeError):
    """Something about the UKey or its PKCS#11 module went wrong."""


class NoTokenPresent(TokenError):
    """No UKey is inserted (or the module sees none)."""


class WrongToken(TokenError):
    """A UKey is inserted, but not the one the job is for."""

    def __init__(self, expected_serial: str, found_serials: list[str]) -> None:
        super().__init__(f"expected key {expected_serial}, found {', '.join(found_serials)}")
        self.expected_serial = expected_serial
        self.found_serials = found_serials


class TokenNotBlank(TokenError):
    """Production needs a blank UKey, and every inserted one is already initialised."""

    def __init__(self, found_serials: list[str]) -> None:
        super().__init__(f"no blank key is inserted (found {', '.join(found_serials)})")
        self.found_serials = found_serials


class TokenRemoved(TokenError):
    """The UKey was pulled out, or its session vanished, in the middle of a job."""


class PinIncorrect(TokenError):
    """The PIN was wrong. ``tries_left`` is known only when the token reports it."""

    def __init__(self, *, tries_left: int | None, final_try: bool, count_low: bool) -> None:
        super().__init__("the PIN is incorrect")
        self.tries_left = tries_left
        self.final_try = final_try
        self.count_low = count_low


class PinLocked(TokenError):
    """The PIN is locked after too many wrong tries; only an unlock helps."""


class PinLengthInvalid(TokenError):
    """The token refused the PIN's length or characters."""


class ModuleLoadFailed(TokenError):
    """The PKCS#11 module file could not be loaded."""


class TokenOperationFailed(TokenError):
    """Any other PKCS#11 failure; ``code`` is the CKR_ value when there is one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PinEntryCancelled(BridgeError):
    """The person at the PC declined the job or closed the PIN prompt."""


class ProtocolError(BridgeError):
    """A message from the server could not be understood."""


class JobRejected(ProtocolError):
    """A job failed its checks (signature, account, device, freshness) and is not run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectionLost(BridgeError):
    """The link to the service dropped while the job waited for it."""


class IssuanceFailed(BridgeError):
    """The service refused to issue a certificate for the request."""


class CertificateMismatch(BridgeError):
    """The issued certificate does not belong to the key pair generated for it."""


class PairingFailed(BridgeError):
    """The pairing code was refused; ``reason`` is the server's reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# AuthFailed reasons that mean the pairing is gone (as opposed to, say, an unsupported version)
UNPAIRED_REASONS = frozenset({"revoked", "unknown_device", "bad_credential"})


class CredentialRevoked(BridgeError):
    """The server no longer accepts this bridge's credential: it was unpaired from chat.

    ``reason`` is the service's AuthFailed reason (``unsupported_version`` is not an unpairing).
    """

    def __init__(self, message: str, *, reason: str = "revoked") -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def unpaired(self) -> bool:
        """The pairing is gone (pair again); otherwise the service refused this version."""
        return self.reason in UNPAIRED_REASONS


class NotPaired(BridgeError):
    """No device credential is stored in the config directory."""
