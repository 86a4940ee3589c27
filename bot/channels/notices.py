"""Texts a channel answers by itself, without the engine: unsupported message kinds, files
over the limit, edits. They change no state, so a redelivery may safely repeat them.

The user's language is the one their conversation chose; a new user gets the channel's hint.
"""

from __future__ import annotations

from typing import Any

from bot.engine.i18n import Catalog, normalise_locale
from bot.engine.messages import ConversationKey
from bot.engine.state import Owner
from bot.engine.store import ConversationStore


class ChannelNotices:
    def __init__(self, catalog: Catalog, store: ConversationStore) -> None:
        self.catalog = catalog
        self.store = store

    async def locale_of(self, key: ConversationKey, hint: str | None = None) -> str:
        row = await self.store.get(key)
        if row is not None:
            chosen = row.state.get("locale")
            if isinstance(chosen, str) and chosen:
                return chosen
        return normalise_locale(hint)

    async def text(
        self, key: ConversationKey, message: str, /, *, hint: str | None = None, **params: Any
    ) -> str:
        return self.catalog.get(await self.locale_of(key, hint), f"channels.{message}", **params)

    async def bot_may_speak(self, key: ConversationKey) -> bool:
        """Staff own the conversation: the channel keeps quiet as the engine would."""
        return Owner.is_bot(await self.store.owner_of(key))
