"""The UKey bridge's wire protocol, as the service speaks it.

The PC program owns the one definition of every frame (``ukey_bridge.protocol``) and the service
uses it as is, so the two sides cannot drift apart; ``ukey_bridge`` in turn imports nothing from
the service. Its ``ProtocolError`` is translated by the hub, which is the adapter that meets it.
"""

from __future__ import annotations

from ukey_bridge.errors import ProtocolError
from ukey_bridge.protocol import (
    JOB_MAX_AGE_SECONDS,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
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
    Message,
    Outcome,
    RefusalReason,
    SignedMessage,
    Stage,
    TokenReport,
    Welcome,
    b64decode,
    b64encode,
    canonical_json,
    compute_signature,
    decode,
    parse,
    signing_key,
    with_signature,
)

__all__ = [
    "JOB_MAX_AGE_SECONDS",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "AuthFailed",
    "CertificateIssued",
    "CertificateRequest",
    "Heartbeat",
    "Hello",
    "IssueFailed",
    "JobOffer",
    "JobProgress",
    "JobRefused",
    "JobResult",
    "JobType",
    "Message",
    "Outcome",
    "ProtocolError",
    "RefusalReason",
    "SignedMessage",
    "Stage",
    "TokenReport",
    "Welcome",
    "b64decode",
    "b64encode",
    "canonical_json",
    "compute_signature",
    "decode",
    "parse",
    "signing_key",
    "with_signature",
]
