"""The bridge wire protocol against golden frames stored as files.

The round-trip tests in test_protocol.py compare the protocol module with itself: a renamed
field would round-trip just as well and still break every bridge already installed on users'
PCs. These files are the contract as it went out (protocol version 1): each must parse into its
message type and encode back to exactly the same JSON object, and a job offer signed with a
known device secret must keep its known signature. Changing any of them is a protocol change:
bump ``PROTOCOL_VERSION`` and keep the old frames working instead of editing the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.bridge import protocol as server
from ukey_bridge import protocol as bridge

GOLDEN = Path(__file__).parent / "golden"
FRAMES = sorted(path for path in GOLDEN.glob("*.json") if path.name.count(".") == 1)


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize("path", FRAMES, ids=[path.stem for path in FRAMES])
def test_each_golden_frame_is_read_and_written_back_unchanged_on_both_sides(path: Path) -> None:
    frame = _load(path)
    assert frame["type"] == path.stem
    for side in (bridge, server):
        message = side.parse(frame)
        assert message.type == path.stem
        assert json.loads(message.encode()) == frame


def test_every_message_type_has_a_golden_frame() -> None:
    assert {path.stem for path in FRAMES} == set(bridge.MESSAGE_TYPES)


def test_a_job_signed_with_a_known_secret_keeps_its_known_signature() -> None:
    golden = _load(GOLDEN / "job.signed.json")
    key = bridge.signing_key(golden["device_secret"])
    offer = bridge.parse(golden["frame"])
    assert isinstance(offer, bridge.JobOffer)
    assert offer.signature_valid(key)
    unsigned = bridge.parse({**golden["frame"], "sig": "00"})
    assert isinstance(unsigned, bridge.JobOffer)
    assert (
        bridge.with_signature(unsigned, server.signing_key(golden["device_secret"])).sig
        == golden["frame"]["sig"]
    )
