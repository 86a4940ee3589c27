"""The wire protocol between the bridge and the service: JSON text frames over a WebSocket.

Every frame is an object with ``v`` (protocol version) and ``type``. Jobs and issued
certificates carry an HMAC-SHA256 ``sig`` under a key both sides derive from the device
credential, over the canonical JSON of the other fields; the bridge refuses a job whose
signature, account, device or freshness is wrong. The service uses this very module
(``bot.bridge.protocol`` re-exports it), so both sides speak one schema.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from types import UnionType
from typing import Any, ClassVar, Final, TypeVar, Union, get_args, get_origin, get_type_hints

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ukey_bridge.errors import ProtocolError

PROTOCOL_VERSION: Final = 1
JOB_MAX_AGE_SECONDS: Final = 600
_SIGNING_SALT: Final = b"sealbot-bridge"
_SIGNING_INFO: Final = b"job-signing v1"


class JobType(StrEnum):
    READ_KEY_INFO = "read_key_info"
    RENEWAL = "renewal"
    CHANGE = "change"
    UNLOCK = "unlock"
    PIN_CHANGE = "pin_change"
    # the production station: initialise a blank key and write a new seal on it
    PRODUCE = "produce"


class Stage(StrEnum):
    """Where a running job is; the chat tells the user what to do next from it."""

    RECEIVED = "received"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    AWAITING_PIN = "awaiting_pin"
    WORKING = "working"
    AWAITING_CERTIFICATE = "awaiting_certificate"
    WRITING = "writing"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    WRONG_PIN = "wrong_pin"
    PIN_LOCKED = "pin_locked"
    PIN_INVALID = "pin_invalid"
    SO_PIN_REJECTED = "so_pin_rejected"
    NO_KEY = "no_key"
    WRONG_KEY = "wrong_key"
    KEY_NOT_BLANK = "key_not_blank"
    KEY_REMOVED = "key_removed"
    CONNECTION_LOST = "connection_lost"
    ISSUANCE_FAILED = "issuance_failed"
    CERT_MISMATCH = "cert_mismatch"
    FAILED = "failed"


class RefusalReason(StrEnum):
    BAD_SIGNATURE = "bad_signature"
    OTHER_ACCOUNT = "other_account"
    OTHER_DEVICE = "other_device"
    STALE = "stale"
    REPLAYED = "replayed"
    UNKNOWN_JOB_TYPE = "unknown_job_type"
    BUSY = "busy"


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError as exc:
        raise ProtocolError("a binary field is not valid base64") from exc


def signing_key(device_secret: str) -> bytes:
    """The per-device HMAC key; the service stores it, never the secret itself."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SIGNING_SALT, info=_SIGNING_INFO)
    return hkdf.derive(device_secret.encode("utf-8"))


def canonical_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def compute_signature(key: bytes, payload: dict[str, Any]) -> str:
    return hmac.new(key, canonical_json(payload), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Message:
    type: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        body = asdict(self)
        body["v"] = PROTOCOL_VERSION
        body["type"] = self.type
        return body

    def encode(self) -> str:
        return json.dumps(self.to_wire(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class SignedMessage(Message):
    sig: str

    def signed_fields(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("sig")
        body["type"] = self.type
        return body

    def signature_valid(self, key: bytes) -> bool:
        return hmac.compare_digest(self.sig, compute_signature(key, self.signed_fields()))


SignedT = TypeVar("SignedT", bound=SignedMessage)


def with_signature(message: SignedT, key: bytes) -> SignedT:
    """The same message with ``sig`` computed under ``key`` (whatever ``sig`` held before)."""
    return replace(message, sig=compute_signature(key, message.signed_fields()))


@dataclass(frozen=True)
class Hello(Message):
    """First frame from the bridge: its credential, as a bearer secret inside TLS."""

    type: ClassVar[str] = "hello"
    device_id: str
    secret: str
    client_version: str
    host_name: str


@dataclass(frozen=True)
class Welcome(Message):
    type: ClassVar[str] = "welcome"
    device_id: str
    account_id: str
    server_time: float
    heartbeat_seconds: float


@dataclass(frozen=True)
class AuthFailed(Message):
    type: ClassVar[str] = "auth_failed"
    reason: str  # "unknown_device" | "revoked" | "bad_credential" | "unsupported_version"


@dataclass(frozen=True)
class Heartbeat(Message):
    type: ClassVar[str] = "heartbeat"
    sent_at: float


@dataclass(frozen=True)
class JobOffer(SignedMessage):
    type: ClassVar[str] = "job"
    job_id: str
    account_id: str
    device_id: str
    job_type: str
    params: dict[str, Any]
    nonce: str
    issued_at: float
    attempt: int


@dataclass(frozen=True)
class JobProgress(Message):
    type: ClassVar[str] = "job_progress"
    job_id: str
    stage: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult(Message):
    type: ClassVar[str] = "job_result"
    job_id: str
    outcome: str
    message: str
    tries_left: int | None = None
    final_try: bool = False
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRefused(Message):
    type: ClassVar[str] = "job_refused"
    job_id: str
    reason: str


@dataclass(frozen=True)
class CertificateRequest(Message):
    type: ClassVar[str] = "csr"
    job_id: str
    csr_der: str  # base64


@dataclass(frozen=True)
class CertificateIssued(SignedMessage):
    type: ClassVar[str] = "issued"
    job_id: str
    cert_der: str  # base64
    seseal_der: str  # base64
    chain_pem: str


@dataclass(frozen=True)
class IssueFailed(Message):
    type: ClassVar[str] = "issue_failed"
    job_id: str
    reason: str


@dataclass(frozen=True)
class TokenReport(Message):
    """The UKeys this PC sees (their PKCS#11 serials): jobs go to a PC that has the seal's key."""

    type: ClassVar[str] = "tokens"
    serials: list[str]


MESSAGE_TYPES: Final[dict[str, type[Message]]] = {
    cls.type: cls
    for cls in (
        Hello,
        Welcome,
        AuthFailed,
        Heartbeat,
        JobOffer,
        JobProgress,
        JobResult,
        JobRefused,
        CertificateRequest,
        CertificateIssued,
        IssueFailed,
        TokenReport,
    )
}


def _matches(value: Any, hint: Any) -> bool:
    options = get_args(hint) if get_origin(hint) in (UnionType, Union) else (hint,)
    for option in options:
        base = get_origin(option) or option
        if option is type(None):
            if value is None:
                return True
        elif base is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return True
        elif base is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif isinstance(value, base):
            return True
    return False


def parse(body: dict[str, Any]) -> Message:
    """Build the typed message from a decoded frame; unknown or malformed frames raise."""
    if body.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {body.get('v')!r}")
    cls = MESSAGE_TYPES.get(str(body.get("type")))
    if cls is None:
        raise ProtocolError(f"unknown message type {body.get('type')!r}")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in body:
            continue
        value = body[f.name]
        if not _matches(value, hints[f.name]):
            raise ProtocolError(f"field {f.name!r} of a {cls.type} message has the wrong type")
        values[f.name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ProtocolError(f"malformed {cls.type} message") from exc


def decode(text: str | bytes) -> Message:
    try:
        body = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("a frame is not JSON") from exc
    if not isinstance(body, dict):
        raise ProtocolError("a frame is not a JSON object")
    return parse(body)
