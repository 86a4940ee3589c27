"""``kill -9`` of a real ``sealbot serve`` at a chosen point: while it is delivering a reply.

The service runs with Telegram switched on against a fake Bot API server on 127.0.0.1. The fake
is told to hold the next ``sendMessage``: it records the call, tells the test, and never
answers, so the service is stuck exactly between "sent the request" and "heard it was sent".
The test kills the service there, lets the fake answer again, and starts the service on the
same database.

What the product promises (docs/channels.md, "Delivery after a crash"): a reply committed
before a crash is delivered after the restart, at least once to the channel. The held request
may or may not have reached the user (Telegram cannot say), so the one duplicate allowed is
that unanswered first attempt; the user is told the reply once by an answered call, and the
stored outbox says it was sent once.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.crash.conftest import (
    USER,
    HoldingTelegram,
    answered_texts,
    outbox_rows,
    post_update,
    received_texts,
    stored_texts,
    wait_until,
)
from tests.fixtures.served import ServedProcess


def test_a_reply_whose_delivery_was_cut_by_a_kill_9_is_delivered_after_the_restart(
    tmp_path: Path, telegram: tuple[HoldingTelegram, str], served: ServedProcess
) -> None:
    fake, _ = telegram
    fake.hold_next_send = True
    post_update(served, fake.text_update(USER, "/start"))
    assert fake.held.wait(30), "the service never tried to deliver the reply"
    [first_attempt] = received_texts(fake)
    assert answered_texts(fake) == []

    served.kill_9()  # while its sendMessage is on the wire, unanswered
    fake.release.set()
    served.start()
    wait_until(lambda: bool(answered_texts(fake)), "the reply was not delivered after the restart")
    time.sleep(1.0)  # room for a wrong second delivery to show up

    # What the user was told: every stored reply, each by exactly one answered call; the only
    # other copy is the attempt the crash cut off (at-least-once to the channel, as documented).
    answered = answered_texts(fake)
    assert answered[0] == first_attempt
    assert len(set(answered)) == len(answered)
    assert sorted(received_texts(fake)) == sorted([first_attempt, *answered])
    # What is stored: the same replies, each sent.
    rows = outbox_rows(tmp_path)
    assert [status for status, _ in rows] == ["sent"] * len(answered)
    stored = stored_texts(rows)
    assert all(text in said for text, said in zip(stored, answered, strict=True))
