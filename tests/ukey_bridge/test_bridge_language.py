"""The bridge's own words on the PC: Simplified Chinese unless English is chosen (--lang en,
UKEY_BRIDGE_LANG=en or an English system locale): confirmations, PIN prompts, job outcomes."""

from __future__ import annotations

import asyncio
import io

import pytest

from tests.ukey_bridge.support import CALink, ScriptedPrompt, SmallCA
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.i18n import Texts, pick_language
from ukey_bridge.jobs import Job, JobRunner
from ukey_bridge.pin_prompt import JobExplanation, PinKind, PinRequest, TerminalPinPrompt
from ukey_bridge.protocol import JobType, Outcome

SERIAL = "UK0002"
PIN = "246810"


def _backend() -> FakeBackend:
    return FakeBackend([FakeToken(SERIAL, "Seal key", user_pin=PIN, so_pin="SO-1", max_tries=3)])


def test_chinese_is_the_default_and_english_is_chosen_explicitly_or_by_locale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("UKEY_BRIDGE_LANG", "LC_ALL", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    assert pick_language() == "zh-CN"
    assert pick_language("en") == "en"
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert pick_language() == "en"
    monkeypatch.setenv("UKEY_BRIDGE_LANG", "zh-CN")
    assert pick_language() == "zh-CN", "the bridge's own setting wins over the system locale"


@pytest.mark.parametrize(
    ("language", "title", "done"),
    [
        ("zh-CN", "修改 UKey UK0002 的密码", "UKey 密码已修改。"),
        ("en", "Change the PIN of UKey UK0002", "The UKey PIN was changed."),
    ],
)
async def test_job_confirmation_and_outcome_speak_the_chosen_language(
    ca: SmallCA, language: str, title: str, done: str
) -> None:
    prompt = ScriptedPrompt(pins=[PIN, "135790"])
    runner = JobRunner(_backend, prompt, texts=Texts(language))
    report = await runner.run(Job("j", JobType.PIN_CHANGE, {"key_serial": SERIAL}), CALink(ca))
    assert report.outcome is Outcome.SUCCEEDED
    assert prompt.confirmations[0].title == title
    assert report.message == done
    assert prompt.notices == [done], "the person at the PC reads the outcome"


async def test_terminal_prompt_asks_in_chinese_and_takes_a_chinese_yes() -> None:
    asked: list[str] = []
    out = io.StringIO()

    def read_secret(question: str) -> str:
        asked.append(question)
        return PIN

    def read_line(question: str) -> str:
        asked.append(question)
        return "是"

    prompt = TerminalPinPrompt(read_line=read_line, read_secret=read_secret, out=out)

    assert await prompt.confirm(JobExplanation("j", "pin_change", "修改 UKey 的密码"))
    pin = await prompt.ask_pin(PinRequest(PinKind.USER, SERIAL, "Seal key", "这是最后一次机会"))
    assert pin == PIN
    assert asked == ["现在在 UKey 上办理吗？[y/N] ", "请输入 Seal key 的 UKey 密码："]
    assert "这是最后一次机会" in out.getvalue()


async def test_terminal_prompt_in_english_when_chosen() -> None:
    asked: list[str] = []

    def read_secret(question: str) -> str:
        asked.append(question)
        return ""

    prompt = TerminalPinPrompt(read_secret=read_secret, out=io.StringIO(), texts=Texts("en"))
    assert await prompt.ask_pin(PinRequest(PinKind.NEW_USER, SERIAL, "Seal key", optional=True)) is None
    assert asked == ["New UKey PIN (empty to keep 12345678): "]


async def test_the_local_pin_page_is_in_chinese_and_takes_the_pin_once() -> None:
    import httpx

    from ukey_bridge.local_page import LocalPagePinPrompt

    links: list[str] = []
    announced = asyncio.Event()

    def announce(link: str) -> None:
        links.append(link)
        announced.set()

    prompt = LocalPagePinPrompt(announce=announce)
    try:
        asked = asyncio.create_task(prompt.ask_pin(PinRequest(PinKind.USER, SERIAL, "Seal key")))
        await asyncio.wait_for(announced.wait(), 5)
        async with httpx.AsyncClient() as http:
            page = await http.get(links[0])
            assert "UKey 密码" in page.text
            assert "确定" in page.text
            assert "取消" in page.text
            answer = await http.post(links[0], data={"action": "ok", "pin": PIN})
            assert "可以关闭此页面" in answer.text
            again = await http.get(links[0])
            assert again.status_code == 403
            assert "此链接无效或已失效" in again.text
        assert await asked == PIN
    finally:
        await prompt.close()
