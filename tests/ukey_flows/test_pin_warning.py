"""The chat warns that wrong PINs were typed on the key only when the key itself reported them
(PKCS#11 count-low / final-try), never for a clean key and never while an unlocked key's new
PIN is being set; in Chinese and in English. On the fake backend, which counts wrong tries."""

from __future__ import annotations

import pytest

from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.conftest import BridgeSide
from tests.ukey_flows.world import Applicant, joined
from ukey_bridge.fake_backend import FakeBackend, FakeToken

PIN = "12345678"
SERIAL = "FAKEKEY0000009"
WARNED = {"zh": "之前输错过密码", "en": "a wrong PIN was typed on this UKey before"}
ANY_CAUTION = {"zh": "注意：", "en": "Careful:"}
TEXT = {
    "zh": {
        "pin_change": "改ukey密码",
        "unlock": "解锁",
        "unlock_yes": "确认办理",
        "asked_pin": "请在电脑上输入 UKey 密码",
        "asked_new_pin": "请在电脑上设置新的 UKey 密码",
        "pin_changed": "UKey 密码已修改",
        "unlocked": "解锁完成",
        "left_2": "还剩 2 次机会",
        "final": "只剩最后 1 次机会",
    },
    "en": {
        "pin_change": "change my pin",
        "unlock": "unlock my key",
        "unlock_yes": "Yes, unlock",
        "asked_pin": "Please type the UKey PIN on the PC",
        "asked_new_pin": "Please set the new UKey PIN on the PC",
        "pin_changed": "The UKey PIN is changed",
        "unlocked": "Unlock complete",
        "left_2": "2 tries are left",
        "final": "only one try is left",
    },
}


async def _seal_on_fake_key(side: BridgeSide, lang: str) -> tuple[Applicant, str, FakeBackend]:
    backend = FakeBackend([FakeToken(SERIAL, "", user_pin="", so_pin="", max_tries=3, initialised=False)])
    side.world.install_station(lambda: backend)
    applicant = await side.world.applicant(lang=lang)
    seal = await side.world.active_seal(applicant)
    assert seal["key_serial"] == SERIAL
    return applicant, str(seal["id"]), backend


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_a_clean_key_gets_no_wrong_pin_warning(bridge_side: BridgeSide, lang: str) -> None:
    _applicant, _seal_id, backend = await _seal_on_fake_key(bridge_side, lang)
    text = TEXT[lang]
    await bridge_side.world.chat.say(text["pin_change"])
    await bridge_side.until("ukey-bridge pair")
    async with bridge_side.pc(lambda: backend, ScriptedPrompt(pins=[PIN, "24681357"])):
        said = await bridge_side.until(text["pin_changed"])
    assert text["asked_pin"] in said
    assert WARNED[lang] not in said


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_earlier_wrong_tries_the_key_reports_are_warned_with_the_tries_left(
    bridge_side: BridgeSide, lang: str
) -> None:
    _applicant, _seal_id, backend = await _seal_on_fake_key(bridge_side, lang)
    backend.tokens[SERIAL].user_failures = 1  # typed wrong once, somewhere else
    text = TEXT[lang]
    await bridge_side.world.chat.say(text["pin_change"])
    await bridge_side.until("ukey-bridge pair")
    async with bridge_side.pc(lambda: backend, ScriptedPrompt(pins=[PIN, "24681357"])):
        said = await bridge_side.until(text["pin_changed"])
    assert WARNED[lang] in said
    assert text["left_2"] in said


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_the_final_try_is_warned_as_such(bridge_side: BridgeSide, lang: str) -> None:
    _applicant, _seal_id, backend = await _seal_on_fake_key(bridge_side, lang)
    backend.tokens[SERIAL].user_failures = 2
    text = TEXT[lang]
    await bridge_side.world.chat.say(text["pin_change"])
    await bridge_side.until("ukey-bridge pair")
    async with bridge_side.pc(lambda: backend, ScriptedPrompt(pins=[PIN, "24681357"])):
        said = await bridge_side.until(text["pin_changed"])
    assert text["final"] in said


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_unlocking_a_locked_key_never_warns_of_wrong_pins_while_the_new_pin_is_set(
    bridge_side: BridgeSide, lang: str
) -> None:
    applicant, seal_id, backend = await _seal_on_fake_key(bridge_side, lang)
    backend.tokens[SERIAL].user_failures = 3  # locked
    world = bridge_side.world
    text = TEXT[lang]
    await world.chat.say(text["unlock"])
    await world.chat.tap(text["unlock_yes"])
    unlock = await world.order_of_seal(applicant, seal_id, "unlock")
    await world.pay(applicant, unlock["id"])
    await bridge_side.until("ukey-bridge pair")
    prompt = ScriptedPrompt(pins=["13579246"])
    async with bridge_side.pc(lambda: backend, prompt):
        said = await bridge_side.until(text["unlocked"])
    assert text["asked_new_pin"] in said
    # the PC was told the PIN was reset (a note with the request), the chat says nothing of tries
    assert prompt.requests[0].warning
    assert WARNED[lang] not in said
    assert ANY_CAUTION[lang] not in said
    assert backend.tokens[SERIAL].user_pin == "13579246"
    assert joined(world.chat.transcript()).count(WARNED[lang]) == 0
