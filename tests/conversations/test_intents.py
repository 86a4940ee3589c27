"""Every process can be reached in free text: at least five phrasings each, Chinese and English,
and each phrasing lands on its own process (the longest phrase wins, so 退出登录 is not 登录)."""

from __future__ import annotations

import pytest

from handlers import catalogue
from handlers.menu import IntentMatcher

PROCESSES = [
    "register",
    "login",
    "logout",
    "realname",
    "apply_enterprise",
    "apply_personal",
    "my_orders",
    "invoice",
    "my_seals",
    "renew",
    "change",
    "reissue",
    "unlock",
    "cancel_seal",
]


def all_intents() -> dict[str, tuple[str, ...]]:
    intents: dict[str, tuple[str, ...]] = {}
    for module in catalogue.modules():
        for flow, phrases in getattr(module, "INTENTS", {}).items():
            intents[flow] = (*intents.get(flow, ()), *phrases)
    return intents


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_has_five_phrasings_in_both_languages(process: str) -> None:
    phrases = all_intents().get(process, ())
    assert len(phrases) >= 5, phrases
    assert any(p.isascii() for p in phrases), "no English phrasing"
    assert any(not p.isascii() for p in phrases), "no Chinese phrasing"


@pytest.mark.parametrize(
    ("process", "phrase"), [(flow, phrase) for flow, phrases in all_intents().items() for phrase in phrases]
)
def test_each_phrasing_lands_on_its_process(process: str, phrase: str) -> None:
    matcher = IntentMatcher(all_intents())
    assert matcher.match(f"你好，{phrase}。") == process or matcher.match(phrase) == process


def test_every_flow_named_by_an_intent_exists() -> None:
    registry = catalogue.flows()
    for target in all_intents():
        assert target.partition(":")[0] in registry, target


def test_every_faq_answer_leads_to_a_process_that_exists() -> None:
    from handlers.faq import TOPICS

    registry = catalogue.flows()
    for topic, follow_up in TOPICS.items():
        assert follow_up is None or follow_up in registry, (topic, follow_up)
