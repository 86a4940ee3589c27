"""A store that watches how the engine uses it: overlapping handling and version conflicts."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from bot.engine.messages import ConversationKey, OutboundMessage
from bot.engine.store import Commit, Snapshot, SqlConversationStore
from bot.errors import VersionConflict


@dataclass
class Probe:
    """Shared by every store of a test (several "workers"), so overlaps across them show."""

    in_flight: Counter[ConversationKey] = field(default_factory=Counter)
    max_in_flight: int = 0
    conflicts: int = 0
    commits: list[tuple[ConversationKey, int]] = field(default_factory=list)
    # Sleeping between read and write widens the window in which an unlocked second handler
    # would read the same version: without it the race is real but rarely observed.
    read_delay: float = 0.005


class ProbedStore(SqlConversationStore):
    def __init__(self, engine: object, probe: Probe) -> None:
        super().__init__(engine)  # type: ignore[arg-type]
        self.probe = probe

    async def load(self, key: ConversationKey, message_id: str | None) -> Snapshot:
        snapshot = await super().load(key, message_id)
        if message_id is not None and snapshot.duplicate_of is None:
            self.probe.in_flight[key] += 1
            self.probe.max_in_flight = max(self.probe.max_in_flight, self.probe.in_flight[key])
            await asyncio.sleep(self.probe.read_delay)
        return snapshot

    async def commit(
        self, key: ConversationKey, snapshot: Snapshot, change: Commit, now: datetime
    ) -> list[OutboundMessage]:
        try:
            messages = await super().commit(key, snapshot, change, now)
        except VersionConflict:
            self.probe.conflicts += 1
            raise
        finally:
            if change.message_id is not None:
                self.probe.in_flight[key] -= 1
        self.probe.commits.append((key, snapshot.version + 1))
        return messages
