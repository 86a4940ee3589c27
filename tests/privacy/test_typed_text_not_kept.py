"""What a user types is compared with the labels of the buttons just shown (typing a label does
what tapping it does), by digest. The labels' digests are cached, since the same labels come back
every message; the typed text is not: an ID number or an address is digested once and not kept
in the process's memory."""

from __future__ import annotations

from bot.engine.messages import ConversationKey, Inbound
from bot.engine.state import ConversationState
from bot.engine.tokens import label_digest, token_of

KEY = ConversationKey("test", "main", "u1")
ID_NUMBER = "110101199003074477"


def _token(state: ConversationState, text: str) -> str | None:
    return token_of(
        state, Inbound.text_message(KEY, "m1", text), is_flow=lambda _name: False, expects_text=lambda: True
    )


def test_typed_text_is_not_cached_and_a_typed_label_still_acts() -> None:
    state = ConversationState(last_labels={label_digest("使用 138****5678"): "1.2.ref:0"})
    before = label_digest.cache_info()
    assert _token(state, ID_NUMBER) is None
    assert _token(state, "上海市浦东新区世纪大道100号") is None
    assert _token(state, "使用138****5678") == "1.2.ref:0"  # spaces and width ignored, as before
    after = label_digest.cache_info()
    assert (after.hits, after.misses, after.currsize) == (before.hits, before.misses, before.currsize)
