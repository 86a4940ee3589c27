"""``AnswerWindow``: the commit and the webhook's timer decide once who answers a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.engine.in_band import AnswerWindow

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
DEADLINE = T0 + timedelta(seconds=4.5)


class At:
    def __init__(self, now: datetime) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value


def test_a_commit_in_time_claims_and_the_webhook_then_waits_for_it() -> None:
    window = AnswerWindow(DEADLINE, At(T0))
    assert window.claim()
    assert not window.close()
    assert window.claim()  # the same commit run again after a refusal: still its claim


def test_once_the_webhook_closed_the_window_no_commit_claims_it() -> None:
    window = AnswerWindow(DEADLINE, At(T0))
    assert window.close()
    assert not window.claim()


def test_a_claim_at_or_after_the_deadline_is_refused_and_closes_the_window() -> None:
    clock = At(DEADLINE)
    window = AnswerWindow(DEADLINE, clock)
    assert not window.claim()
    clock.value = T0  # a clock that went back changes nothing once closed
    assert not window.claim()
    assert window.close()


def test_what_the_commit_decided_is_read_after_it() -> None:
    window = AnswerWindow(DEADLINE, At(T0))
    assert (window.decided, window.carried) == (False, ())  # a duplicate decides nothing
    window.decide([7, 8])
    assert (window.decided, window.carried) == (True, (7, 8))
