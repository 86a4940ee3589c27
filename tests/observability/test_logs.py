"""JSON log lines carry the request and conversation ids and never a personal number."""

from __future__ import annotations

import json
import logging

from observability.logs import JsonFormatter, bound, mask


def _line(message: str, *args: object) -> dict[str, object]:
    record = logging.LogRecord("sealbot.test", logging.WARNING, __file__, 1, message, args, None)
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


def test_a_line_inside_a_request_names_the_request_and_the_conversation() -> None:
    with bound(request="r-1", conversation="wechat:o123"):
        line = _line("reply queued for %s", "wechat:o123")
    assert line["request_id"] == "r-1"
    assert line["conversation_id"] == "wechat:o123"
    assert line["level"] == "WARNING"
    assert line["msg"] == "reply queued for wechat:o123"
    outside = _line("idle")
    assert "request_id" not in outside
    assert "conversation_id" not in outside


def test_nested_bindings_restore_the_outer_ids() -> None:
    with bound(request="outer"):
        with bound(request="inner", conversation="c"):
            assert _line("x")["request_id"] == "inner"
        after = _line("y")
    assert after["request_id"] == "outer"
    assert "conversation_id" not in after


def test_personal_numbers_are_masked_in_messages_and_tracebacks() -> None:
    text = "用户 13912345678 身份证 44010619900101123X 卡号 6222020200112233445 验证码 482913"
    assert mask(text) == "用户 139****5678 身份证 [id-number] 卡号 [card-number] 验证码 [code]"
    try:
        raise ValueError("bad id 44010619900101123X")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "failed for %s", ("13800001111",), sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "failed for 138****1111"
    assert "44010619900101123X" not in line["exc"]
    assert "[id-number]" in line["exc"]


def test_order_codes_and_years_are_left_alone() -> None:
    assert mask("订单 86063DBD 有效期 2028 年, 端口 8000") == "订单 86063DBD 有效期 2028 年, 端口 8000"
