"""Taking a UKey step up again after its job ended meanwhile (``Flow.on_resume``): the hub's
record of the job decides, not whatever events the put-aside run happened to queue. A step
finished while put aside (or kept as a draft, which no event reaches) ends at once with one
line, never repeating the done message or waiting for a job that is over; a job that failed
meanwhile says why once and offers 重试. On the fake token backend, with the PIN entry on the
PC held until the chat has moved on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from tests.conversations.test_resume import log_in
from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.conftest import BridgeSide
from tests.ukey_flows.world import joined
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.pin_prompt import PinRequest

PIN = "12345678"
SERIAL = "FAKEKEY0000011"
WORDS = {
    "zh": {
        "start": "改ukey密码",
        "menu": "菜单",
        "resume": "继续上次未完成的业务",
        "logout": "退出登录",
        "done": "UKey 密码已修改",
        "already": "已经在您离开期间完成了",
        "waiting": "请在电脑上",
        "wrong": "还可以再试 2 次",
        "retry": "重试",
    },
    "en": {
        "start": "change my pin",
        "menu": "menu",
        "resume": "Continue where I left off",
        "logout": "log out",
        "done": "The UKey PIN is changed",
        "already": "finished while you were away",
        "waiting": "on the PC",
        "wrong": "2 tries are left",
        "retry": "Retry",
    },
}


@dataclass
class HeldPrompt(ScriptedPrompt):
    """Answers PINs only once ``release`` is set: the job is running on the PC meanwhile."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    asked: asyncio.Event = field(default_factory=asyncio.Event)

    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def ask_pin(self, request: PinRequest) -> str | None:
        self.asked.set()
        await self.release.wait()
        return await super().ask_pin(request)

    async def notify(self, text: str) -> None:
        await super().notify(text)
        self.ended.set()  # the runner tells the PC how the job ended, then reports it


async def _job_running_on_the_pc(
    side: BridgeSide, lang: str, pins: list[str | None]
) -> tuple[FakeBackend, HeldPrompt]:
    backend = FakeBackend([FakeToken(SERIAL, "", user_pin="", so_pin="", max_tries=3, initialised=False)])
    side.world.install_station(lambda: backend)
    applicant = await side.world.applicant(lang=lang)
    await side.world.active_seal(applicant)
    await side.world.chat.say(WORDS[lang]["start"])
    await side.until("ukey-bridge pair")
    return backend, HeldPrompt(pins=pins)


def _count(side: BridgeSide, text: str) -> int:
    return joined(side.world.chat.transcript()).count(text)


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_a_step_that_finished_while_put_aside_ends_on_resume_without_repeating_itself(
    bridge_side: BridgeSide, lang: str
) -> None:
    words = WORDS[lang]
    chat = bridge_side.world.chat
    backend, prompt = await _job_running_on_the_pc(bridge_side, lang, [PIN, "24681357"])
    async with bridge_side.pc(lambda: backend, prompt):
        await asyncio.wait_for(prompt.asked.wait(), 10)
        await chat.say(words["menu"])  # the user goes elsewhere; the PC is still asking for the PIN
        before = len(chat.transcript())
        prompt.release.set()
        await bridge_side.until(words["done"], since=before)  # the push tells the end at once
        await chat.say(words["menu"])
        resumed = joined(await chat.tap(words["resume"]))
    assert words["already"] in resumed
    assert words["waiting"] not in resumed, "no wait for a job that is over"
    assert _count(bridge_side, words["done"]) == 1, "the done message is not repeated"
    assert backend.tokens[SERIAL].user_pin == "24681357"
    await chat.say(words["menu"])
    assert words["resume"] not in [o.label for o in chat.options()], "nothing left to resume"


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_a_step_that_finished_while_logged_out_is_told_once_after_logging_in_again(
    bridge_side: BridgeSide, lang: str
) -> None:
    """Logged out, the push cannot tell the end (no session): taking the step up after the
    login tells it, once, instead of waiting for a job that is over."""
    words = WORDS[lang]
    world = bridge_side.world
    chat = world.chat
    backend, prompt = await _job_running_on_the_pc(bridge_side, lang, [PIN, "24681357"])
    async with bridge_side.pc(lambda: backend, prompt):
        await asyncio.wait_for(prompt.asked.wait(), 10)
        await chat.say(words["logout"])
        prompt.release.set()
        await asyncio.wait_for(prompt.ended.wait(), 10)  # the job is over on the PC
        await bridge_side.settle()
        await chat.say(words["menu"])
        await chat.tap(words["resume"])
        back = joined(await log_in(world, "13800138000", english=lang == "en"))
        await bridge_side.settle()
    assert words["done"] in back
    assert words["waiting"] not in back.split(words["done"])[-1]
    assert _count(bridge_side, words["done"]) == 1
    assert backend.tokens[SERIAL].user_pin == "24681357"


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_a_job_that_failed_while_put_aside_says_why_once_and_offers_a_retry(
    bridge_side: BridgeSide, lang: str
) -> None:
    words = WORDS[lang]
    chat = bridge_side.world.chat
    backend, prompt = await _job_running_on_the_pc(bridge_side, lang, ["000000"])
    async with bridge_side.pc(lambda: backend, prompt):
        await asyncio.wait_for(prompt.asked.wait(), 10)
        await chat.say(words["menu"])
        prompt.release.set()
        await bridge_side.until("did not finish" if lang == "en" else "没有完成")
        await chat.say(words["menu"])
        resumed = joined(await chat.tap(words["resume"]))
        offered = [o.label for o in chat.options()]
        await bridge_side.settle()
    assert resumed.count(words["wrong"]) == 1, resumed
    assert words["retry"] in offered, (resumed, offered)
    assert _count(bridge_side, words["wrong"]) == 1, "the failure is told once"


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_saying_reissue_while_a_cancelled_reissue_is_put_aside_starts_anew(
    bridge_side: BridgeSide, lang: str
) -> None:
    """The reissue put aside holds an order that was cancelled elsewhere: asking for a reissue
    again says so in one line and asks from the start, for the same seal."""
    world = bridge_side.world
    chat = world.chat
    english = lang == "en"
    applicant = await world.applicant(lang=lang)
    seal = await world.active_seal(applicant)
    await chat.say("reissue" if english else "补办")
    await chat.say("王五")
    await chat.say("13800138000")
    await chat.say("广东省 广州市 天河区")
    await chat.say("天河路 100 号 20 楼")
    await chat.tap("All correct" if english else "确认无误")
    order = await world.order_of_seal(applicant, str(seal["id"]), "reissue")
    await chat.say("menu" if english else "菜单")  # the payment wait is put aside
    await world.service.container.platform.orders.cancel(applicant.token, order["id"])
    again = joined(await chat.say("reissue" if english else "补办"))
    code = str(order["id"])[:8].upper()
    if english:
        assert f'The unfinished "Reissue a seal" order {code} is cancelled and cannot go on' in again
        assert "Who should receive the new UKey?" in again
    else:
        assert f"上次未完成的「印章补办」订单 {code} 已取消，不能再继续，现在为您重新办理。" in again
        assert "收件人" in again
