"""Fuzzing the WeChat XML edge: whatever a callback body holds, the answer is a message for the
engine or a 4xx refusal (``RequestRejected``), never another exception (a 500 makes WeChat tell
the user the account cannot serve them). Derandomised for CI.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.wechat.inbound import decide
from bot.channels.wechat.xml_safety import parse_xml
from bot.errors import RequestRejected

FUZZ = settings(max_examples=300, derandomize=True, deadline=None)
LIMIT = 64 * 1024

TEXT = (
    "<xml><ToUserName><![CDATA[gh_123]]></ToUserName><FromUserName><![CDATA[oUser123]]></FromUserName>"
    "<CreateTime>1764480000</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>"
    "<Content><![CDATA[{content}]]></Content><MsgId>24000000000000001</MsgId>"
    "<MediaId><![CDATA[m1]]></MediaId><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[k]]></EventKey></xml>"
)
KINDS = st.sampled_from(["text", "image", "file", "voice", "event", "location", "video", "link", "x"])
# What users type, including what looks like markup to a careless parser.
CONTENT = (
    st.lists(
        st.sampled_from([*"申请企业印章abc 123<>&;!-[]\"'", "<!DOCTYPE x>", "<!ENTITY e 'x'>", "&amp;"]),
        max_size=40,
    )
    .map("".join)
    .filter(lambda text: "]]>" not in text)
)


def _handle(body: bytes) -> None:
    """The edge's two steps after the signature: parse, then decide what the message is."""
    status = 200
    try:
        decide(parse_xml(body, limit=LIMIT), "wxappid")
    except RequestRejected as refused:
        status = refused.status
    assert status == 200 or 400 <= status < 500


@FUZZ
@given(body=st.binary(max_size=2048))
def test_arbitrary_bodies_are_refused_with_a_4xx_or_read(body: bytes) -> None:
    _handle(body)


@FUZZ
@given(
    kind=KINDS,
    content=CONTENT,
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
)
def test_damaged_wechat_messages_are_refused_with_a_4xx_or_read(
    kind: str, content: str, edits: list[tuple[int, int]]
) -> None:
    body = bytearray(TEXT.format(kind=kind, content=content).encode())
    for position, value in edits:
        body[position % len(body)] = value
    _handle(bytes(body))


@FUZZ
@given(content=CONTENT)
def test_what_a_user_types_inside_cdata_is_read_back_exactly(content: str) -> None:
    message = parse_xml(TEXT.format(kind="text", content=content).encode(), limit=LIMIT)
    # Leading and trailing blanks are trimmed (a message of blanks is empty); nothing else changes.
    assert (message["Content"] or "") == content.strip()
