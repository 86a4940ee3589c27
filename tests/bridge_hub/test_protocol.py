"""The bridge wire protocol: the service speaks the bridge's own module, every frame type
round-trips, signatures verify and break on tampering, malformed frames are refused."""

from __future__ import annotations

from typing import Any

import pytest

from bot.bridge import protocol as server
from ukey_bridge import protocol as bridge

SAMPLES: list[dict[str, Any]] = [
    {"type": "hello", "device_id": "d1", "secret": "s", "client_version": "1", "host_name": "PC-1"},
    {"type": "welcome", "device_id": "d1", "account_id": "a1", "server_time": 1.5, "heartbeat_seconds": 20.0},
    {"type": "auth_failed", "reason": "revoked"},
    {"type": "heartbeat", "sent_at": 10.0},
    {
        "type": "job",
        "sig": "00",
        "job_id": "j1",
        "account_id": "a1",
        "device_id": "d1",
        "job_type": "renewal",
        "params": {"key_serial": "K1", "subject": {"common_name": "公司"}},
        "nonce": "n1",
        "issued_at": 100.0,
        "attempt": 1,
    },
    {"type": "job_progress", "job_id": "j1", "stage": "awaiting_pin", "detail": {"pin": "user"}},
    {
        "type": "job_result",
        "job_id": "j1",
        "outcome": "wrong_pin",
        "message": "The PIN is wrong.",
        "tries_left": 2,
        "final_try": False,
        "data": {},
    },
    {"type": "job_refused", "job_id": "j1", "reason": "bad_signature"},
    {"type": "csr", "job_id": "j1", "csr_der": "AAEC"},
    {
        "type": "issued",
        "sig": "00",
        "job_id": "j1",
        "cert_der": "AA==",
        "seseal_der": "AQ==",
        "chain_pem": "-",
    },
    {"type": "issue_failed", "job_id": "j1", "reason": "no such job"},
    {"type": "tokens", "serials": ["4ed9ae9c5d7fecfe"]},
]


@pytest.mark.parametrize("sample", SAMPLES, ids=[s["type"] for s in SAMPLES])
def test_each_frame_type_round_trips_through_encode_and_decode(sample: dict[str, Any]) -> None:
    frame = {"v": 1, **sample}
    on_server = server.parse(frame)
    on_bridge = bridge.parse(frame)
    assert on_server.to_wire() == on_bridge.to_wire() == frame
    assert bridge.decode(on_server.encode()).to_wire() == frame
    assert server.decode(on_bridge.encode()).to_wire() == frame


def test_the_service_speaks_the_bridges_own_protocol_and_every_type_is_sampled() -> None:
    assert server.MESSAGE_TYPES is bridge.MESSAGE_TYPES
    assert set(bridge.MESSAGE_TYPES) == {s["type"] for s in SAMPLES}
    assert [o.value for o in server.Outcome] == [o.value for o in bridge.Outcome]
    assert [t.value for t in server.JobType] == [t.value for t in bridge.JobType]
    assert [s.value for s in server.Stage] == [s.value for s in bridge.Stage]


def test_signatures_made_by_the_server_verify_on_the_bridge_and_break_on_tampering() -> None:
    server_key = server.signing_key("device-secret")
    assert server_key == bridge.signing_key("device-secret")
    job = server.with_signature(server.parse({"v": 1, **SAMPLES[4]}), server_key)  # type: ignore[type-var]
    received = bridge.decode(job.encode())
    assert isinstance(received, bridge.JobOffer)
    assert received.signature_valid(bridge.signing_key("device-secret"))
    tampered = bridge.decode(job.encode().replace('"K1"', '"K2"'))
    assert isinstance(tampered, bridge.JobOffer)
    assert not tampered.signature_valid(bridge.signing_key("device-secret"))


def test_wrong_version_and_wrong_field_types_are_refused() -> None:
    for side in (server, bridge):
        with pytest.raises(side.ProtocolError):
            side.parse({"v": 2, "type": "heartbeat", "sent_at": 1.0})
        with pytest.raises(side.ProtocolError):
            side.parse({"v": 1, "type": "job_progress", "job_id": 5, "stage": "x"})
        with pytest.raises(side.ProtocolError):
            side.decode("not json")
