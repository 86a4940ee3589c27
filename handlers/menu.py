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


# How questions start (a question typed at a free-text field is answered, not taken as the
# answer); a text ending in ？/? or 吗 is a question whatever its start.
_QUESTION_STARTS = (
    "怎么",
    "怎样",
    "如何",
    "为什么",
    "为啥",
    "多久",
    "多长时间",
    "多少",
    "什么",
    "哪",
    "能不能",
    "能否",
    "可不可以",
    "可以吗",
    "是否",
    "要不要",
    "需不需要",
    "需要什么",
    "请问",
)
_QUESTION_WORDS = (
    "how",
    "what",
    "when",
    "why",
    "where",
    "which",
    "can",
    "do",
    "does",
    "is",
    "are",
    "will",
    "should",
)
GREETINGS = frozenset(
    {
        "你好",
        "您好",
        "hi",
        "hello",
        "hey",
        "嗨",
        "哈喽",
        "在吗",
        "在么",
        "早上好",
        "下午好",
        "晚上好",
        "good morning",
    }
)
_PUNCTUATION = re.compile(r"[\s,.!?;:，。！？；：、~～…'\"“”‘’()（）]+")
STRONG = 0.6  # share of the message a phrase must cover to be taken as naming it


# Words that make a Chinese message a question wherever they stand ("印章多久能收到").
_QUESTION_INSIDE = ("怎么", "怎样", "如何", "为什么", "多久", "多长时间", "什么时候", "能不能", "是否")


def looks_like_question(text: str) -> bool:
    message = (
        _PUNCTUATION.sub(" ", _normalise(text)).strip() if not text.strip().endswith(("?", "？")) else "?"
    )
    if message == "?" or message.endswith("吗"):
        return True
    if message.startswith(_QUESTION_STARTS) or any(word in message for word in _QUESTION_INSIDE):
        return True
    first = message.split(" ", 1)[0]
    return first in _QUESTION_WORDS


class IntentMatcher:
    """Phrase spotting: the longest phrase found in the message decides (so 退出登录 beats 登录)."""

    def __init__(self, intents: Mapping[str, Iterable[str]]) -> None:
        pairs = [(_normalise(p), flow) for flow, phrases in intents.items() for p in phrases]
        self._phrases = sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)

    def best(self, text: str) -> tuple[str, str] | None:
        """The longest phrase found in the text, and its target."""
        message = _normalise(text)
        for phrase, flow in self._phrases:
            if phrase.isascii():
                if re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", message):
                    return phrase, flow
            elif phrase in message:
                return phrase, flow
        return None

    def match(self, text: str) -> str | None:
        found = self.best(text)
        return found[1] if found else None

    def _coverage(self, text: str, phrase: str) -> float:
        bare = _PUNCTUATION.sub("", _normalise(text))
        return len(_PUNCTUATION.sub("", phrase)) / max(1, len(bare))

    def question(self, text: str) -> str | None:
        """``faq:<topic>`` for a question (or a text that is mostly an FAQ phrase), ``faq`` for
        a question on no known topic, None for anything else."""
        found = self.best(text)
        asked = looks_like_question(text)
        if (
            found is not None
            and found[1].startswith("faq")
            and (asked or self._coverage(text, found[0]) >= STRONG)
        ):
            return found[1]
        return "faq" if asked else None

    def process_named(self, text: str) -> str | None:
        """The process a text is hardly more than the name of ("注销印章"), else None."""
        found = self.best(text)
        if found is None or found[1].startswith("faq") or self._coverage(text, found[0]) < STRONG:
            return None
        return found[1].partition(":")[0]


class Home:
    """The home handler; it also tells the engine what free text means (``Understanding``)."""

    def __init__(
        self,
        items: Sequence[MenuItem],
        intents: Mapping[str, Iterable[str]],
        *,
        titles: Mapping[str, str] | None = None,
    ) -> None:
        self.items = sorted(items, key=lambda item: item.order)
        self.intents = IntentMatcher(intents)
        self.titles = dict(titles or {})  # flow name -> catalog key of its title (for drafts)

    def question(self, text: str) -> str | None:
        return self.intents.question(text)

    def process_named(self, text: str) -> str | None:
        return self.intents.process_named(text)

    async def __call__(self, ctx: Ctx, inbound: Inbound | None) -> Outcome | None:
        if inbound is not None and inbound.kind is InboundKind.TEXT and inbound.text.strip():
            target = self.intents.match(inbound.text)
            if target is not None:
                # "faq:shipping" starts the faq flow at its "shipping" answer
                flow, _, arg = target.partition(":")
                return StartFlow(flow, prefill={"_arg": arg} if arg else {})
            if _PUNCTUATION.sub(" ", _normalise(inbound.text)).strip() in GREETINGS:
                ctx.say("home.greeting")
            else:
                ctx.say("home.not_understood")
        self.show(ctx)
        return None

    def show(self, ctx: Ctx) -> None:
        options = [Option(f"@go:{item.flow}", ctx.t(item.label)) for item in self.items if item.visible(ctx)]
        if ctx.state.paused:
            options.insert(0, Option("@resume", ctx.t("home.resume")))
        for name in ctx.state.drafts:
            title = ctx.t(self.titles[name]) if name in self.titles else name
            options.insert(0, Option(f"@draft:{name}", ctx.t("engine.from_draft", process=title)))
        options.append(Option("@help", ctx.t("home.help")))
        options.append(Option("@human", ctx.t("home.human")))
        ctx.state.last_menu = [o.token for o in options]
        greeting = "home.menu_logged_in" if ctx.session else "home.menu"
        ctx.say(greeting, options=options)
