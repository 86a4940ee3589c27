"""The contract of a second desk that mirrors conversations (the Telegram staff group)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.engine.messages import ConversationKey, FileRef


class NoteKind(StrEnum):
    OPENED = "opened"  # a conversation entered the queue
    USER = "user"  # the user wrote while staff own the conversation
    STAFF = "staff"  # a staff message reached the user
    CLAIMED = "claimed"
    RELEASED = "released"
    HANDED_BACK = "handed_back"
    ESCALATED = "escalated"


@dataclass(frozen=True)
class DeskNote:
    key: ConversationKey
    kind: NoteKind
    text: str = ""
    agent: str | None = None
    file: FileRef | None = None
    # the desk a staff message came from, so that a desk does not echo its own staff's words
    source: str = "console"


class DeskRelay(Protocol):
    name: str

    async def note(self, note: DeskNote) -> None:
        """Mirror one thing that happened; failures are the relay's own to log, never raise."""
        ...
