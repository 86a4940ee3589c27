"""The home of every conversation: the main menu and free-text intents.

Each handler module contributes its ``MENU`` items and ``INTENTS`` phrases; ``Home`` is what the
engine calls when no process is running. Anything not understood gets the menu and the way to a
human: never a dead end.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.engine.context import Ctx
from bot.engine.flow import Outcome, StartFlow
from bot.engine.messages import Inbound, InboundKind, Option


@dataclass(frozen=True)
class MenuItem:
    flow: str
    label: str  # catalog key
    visible: Callable[[Ctx], bool] = lambda ctx: True
    order: int = 50


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


class IntentMatcher:
    """Phrase spotting: the longest phrase found in the message decides (so 退出登录 beats 登录)."""

    def __init__(self, intents: Mapping[str, Iterable[str]]) -> None:
        pairs = [(_normalise(p), flow) for flow, phrases in intents.items() for p in phrases]
        self._phrases = sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)

    def match(self, text: str) -> str | None:
        message = _normalise(text)
        for phrase, flow in self._phrases:
            if phrase.isascii():
                if re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", message):
                    return flow
            elif phrase in message:
                return flow
        return None


class Home:
    def __init__(self, items: Sequence[MenuItem], intents: Mapping[str, Iterable[str]]) -> None:
        self.items = sorted(items, key=lambda item: item.order)
        self.intents = IntentMatcher(intents)

    async def __call__(self, ctx: Ctx, inbound: Inbound | None) -> Outcome | None:
        if inbound is not None and inbound.kind is InboundKind.TEXT and inbound.text.strip():
            target = self.intents.match(inbound.text)
            if target is not None:
                # "faq:shipping" starts the faq flow at its "shipping" answer
                flow, _, arg = target.partition(":")
                return StartFlow(flow, prefill={"_arg": arg} if arg else {})
            ctx.say("home.not_understood")
        self.show(ctx)
        return None

    def show(self, ctx: Ctx) -> None:
        options = [Option(f"@go:{item.flow}", ctx.t(item.label)) for item in self.items if item.visible(ctx)]
        paused = ctx.state.memory.get("_paused", {})
        if paused:
            options.insert(0, Option("@resume", ctx.t("home.resume")))
        options.append(Option("@help", ctx.t("home.help")))
        options.append(Option("@human", ctx.t("home.human")))
        ctx.state.last_menu = [o.token for o in options]
        greeting = "home.menu_logged_in" if ctx.session else "home.menu"
        ctx.say(greeting, options=options)
