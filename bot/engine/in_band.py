"""Answering in the response: replies a channel carries back in the answer to the request that
brought the message (WeChat's passive reply), decided inside the transaction that commits them.

A WeChat callback has one deadline. Replies may go back in its response only if they are
claimed before it; the webhook answers "success" at the deadline otherwise, and then every
reply goes through the customer-service API. Claiming in the handling's own commit makes a
message cost one write transaction (state, replies, receipt, the claim and the delivery
record together) instead of four, and ``AnswerWindow`` decides between that commit and the
webhook's timer, once: whichever comes first wins, the other abides by it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.engine.messages import Reply
from bot.engine.ports import Clock
from bot.engine.store import SideWrite


class AnswerWindow:
    """The deadline of one request's response, shared by the commit (on the store's thread)
    and the webhook (on the event loop)."""

    def __init__(self, deadline: datetime, clock: Clock) -> None:
        self.deadline = deadline
        self.clock = clock
        self._lock = threading.Lock()
        self._claimed = False
        self._closed = False
        # set by the store's commit: whether one decided, and the outbox ids it put in the
        # response (a duplicate delivery commits nothing and decides nothing)
        self.decided = False
        self.carried: tuple[int, ...] = ()

    def decide(self, carried: Sequence[int]) -> None:
        """For the commit: what it put in the response (again if the commit runs again)."""
        self.carried = tuple(carried)
        self.decided = True

    def claim(self) -> bool:
        """For the commit, inside its transaction: True if it may put replies in the
        response. After the deadline, or once the webhook has closed it, never. Claiming again
        (a commit run again after a refusal) is allowed: the first claim decided."""
        with self._lock:
            if self._claimed:
                return True
            if self._closed or self.clock.now() >= self.deadline:
                self._closed = True
                return False
            self._claimed = True
            return True

    def close(self) -> bool:
        """For the webhook, at the deadline: True if no commit claimed the window (answer
        "success"); False if one did, whose result is then only a COMMIT away."""
        with self._lock:
            if self._claimed:
                return False
            self._closed = True
            return True


@dataclass(frozen=True)
class InBandPlan:
    """What the commit does with the replies the handling produced: ``count`` leading replies
    fit in the response, and ``record`` (the answer, kept for the request's retries) is
    written if they go in it. They do not once the window has closed, nor while an earlier
    answer of the conversation is still on its way (a later reply must not overtake it); then
    nothing is recorded, and a retry of the request may still carry what is left unsent."""

    count: int
    record: SideWrite | None = None


@dataclass(frozen=True)
class InBandCommit:
    """A plan and the window it depends on, as the store receives them with a ``Commit``."""

    window: AnswerWindow
    plan: InBandPlan

    def claimable(self, replies: int) -> int:
        """For the commit, inside its transaction: how many of its ``replies`` it may put in
        the response, claiming the window if that is any (the store then checks that no
        earlier answer of the conversation is still on its way)."""
        if not self.plan.count or not replies or not self.window.claim():
            return 0
        return min(self.plan.count, replies)


class InBandAnswer(Protocol):
    """What a channel gives ``Engine.handle`` to be offered the replies for its response."""

    window: AnswerWindow

    def plan(self, replies: Sequence[Reply], *, locale: str, owner: str) -> InBandPlan:
        """Called once the replies are known, before they are committed (on the event loop);
        ``replies`` are as stored (private texts sealed), ``owner`` is the conversation's
        owner after the handling."""
        ...
