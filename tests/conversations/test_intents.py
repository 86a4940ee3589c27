"""Every process can be reached in free text: at least five phrasings each, Chinese and English,
and each phrasing lands on its own process (the longest phrase wins, so 退出登录 is not 登录)."""

from __future__ import annotations

import pytest

from handlers import catalogue

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


# Phrasings written for this test (not the catalogue's own lists), as people type them.
INDEPENDENT = [
    ("register", "我还没有账号，想注册一下"),
    ("register", "how do I sign up for an account"),
    ("login", "帮我登录一下"),
    ("login", "I'd like to log in"),
    ("logout", "我要退出登录了"),
    ("logout", "please log me out"),
    ("realname", "我要做实名认证"),
    ("realname", "verify identity for my account"),
    ("apply_enterprise", "公司想申请公章"),
    ("apply_enterprise", "we need a company seal"),
    ("apply_personal", "我想办个法人章"),
    ("my_orders", "查一下我的订单"),
    ("invoice", "帮我开票"),
    ("invoice", "上个月的单子要发票"),
    ("my_seals", "看看我的印章"),
    ("renew", "印章快到期了，想续期"),
    ("unlock", "ukey锁了要解锁"),
    ("cancel_seal", "这个印章不用了，注销掉"),
    ("pin_change", "我想改密码"),
    ("bridges", "UKey 助手（电脑）"),
]


@pytest.mark.parametrize(("process", "phrase"), INDEPENDENT)
def test_phrasings_written_for_the_test_land_on_their_process(process: str, phrase: str) -> None:
    assert catalogue.home().intents.match(phrase) == process


def test_every_flow_named_by_an_intent_exists() -> None:
    registry = catalogue.flows()
    for target in all_intents():
        assert target.partition(":")[0] in registry, target


def test_every_faq_answer_leads_to_a_process_that_exists() -> None:
    from handlers.faq import TOPICS

    registry = catalogue.flows()
    for topic, follow_up in TOPICS.items():
        assert follow_up is None or follow_up in registry, (topic, follow_up)
