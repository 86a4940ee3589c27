"""PIN counters, lock-out and a key pulled mid-job, on the fake backend (SoftHSM2 has none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ukey_bridge.support import CALink, ScriptedPrompt, SmallCA, seed_credential, working_pairs
from ukey_bridge.backend import TokenBackend
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.i18n import Texts
from ukey_bridge.jobs import Job, JobRunner
from ukey_bridge.journal import JobJournal
from ukey_bridge.protocol import JobType, Outcome

SERIAL = "UK0001"
PIN = "246810"


def fake(max_tries: int = 3) -> FakeBackend:
    return FakeBackend([FakeToken(SERIAL, "Seal key", user_pin=PIN, so_pin="SO-998877", max_tries=max_tries)])


def factory(backend: FakeBackend) -> TokenBackend:
    return backend


def pin_job(job_id: str) -> Job:
    return Job(job_id, JobType.PIN_CHANGE, {"key_serial": SERIAL})


WORDS = {
    "zh-CN": (
        "还剩 2 次机会",
        "这把 UKey 之前输错过密码：还剩 2 次机会。",
        "再输错 UKey 将被锁定",
        "这是最后一次机会",
    ),
    "en": (
        "2 tries are left",
        "A wrong PIN was typed before: 2 tries are left.",
        "locks the key",
        "final try",
    ),
}


@pytest.mark.parametrize("language", ["zh-CN", "en"])
async def test_wrong_pins_count_down_warn_on_final_try_then_lock(ca: SmallCA, language: str) -> None:
    """Said on the PC in the bridge's language (Chinese unless English is chosen)."""
    backend = fake(max_tries=3)
    link = CALink(ca)
    t = Texts(language)
    left, warned, locks, final = WORDS[language]

    first_prompt = ScriptedPrompt(pins=["000000", "111111"])
    first = await JobRunner(lambda: backend, first_prompt, texts=t).run(pin_job("a"), link)
    assert first_prompt.requests[0].warning is None, "a clean key: nothing to warn of"
    assert first.outcome is Outcome.WRONG_PIN
    assert first.tries_left == 2
    assert left in first.message

    second_prompt = ScriptedPrompt(pins=["000000", "111111"])
    second = await JobRunner(lambda: backend, second_prompt, texts=t).run(pin_job("b"), link)
    assert second_prompt.requests[0].warning == warned
    assert second.outcome is Outcome.WRONG_PIN
    assert second.final_try is True
    assert locks in second.message

    third_prompt = ScriptedPrompt(pins=["000000", "111111"])
    third = await JobRunner(lambda: backend, third_prompt, texts=t).run(pin_job("c"), link)
    assert final in (third_prompt.requests[0].warning or "")
    assert third.outcome is Outcome.PIN_LOCKED
    assert third.tries_left == 0

    fourth_prompt = ScriptedPrompt(pins=[PIN, "111111"])
    fourth = await JobRunner(lambda: backend, fourth_prompt).run(pin_job("d"), link)
    assert fourth.outcome is Outcome.PIN_LOCKED
    assert fourth_prompt.requests == [], "a locked key is not asked for a PIN"


async def test_correct_pin_resets_the_counter(ca: SmallCA) -> None:
    backend = fake(max_tries=3)
    await JobRunner(lambda: backend, ScriptedPrompt(pins=["000000", "1"])).run(pin_job("a"), CALink(ca))
    ok = await JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "135790"])).run(pin_job("b"), CALink(ca))
    assert ok.outcome is Outcome.SUCCEEDED
    assert backend.tokens[SERIAL].pin_state.count_low is False
    assert backend.tokens[SERIAL].user_pin == "135790"


async def test_unlock_after_lock_out_resets_pin_and_flags_it_to_be_changed(ca: SmallCA) -> None:
    backend = fake(max_tries=1)
    await JobRunner(lambda: backend, ScriptedPrompt(pins=["000000", "1"])).run(pin_job("a"), CALink(ca))
    assert backend.tokens[SERIAL].pin_state.locked

    unlock = Job("u", JobType.UNLOCK, {"key_serial": SERIAL, "so_pin": "SO-998877"})
    report = await JobRunner(lambda: backend, ScriptedPrompt(pins=[None])).run(unlock, CALink(ca))

    assert report.outcome is Outcome.SUCCEEDED
    state = backend.tokens[SERIAL].pin_state
    assert not state.locked
    assert state.to_be_changed
    assert backend.tokens[SERIAL].user_pin == "12345678"


async def test_new_pin_too_short_is_refused_in_plain_words(ca: SmallCA) -> None:
    backend = fake()
    report = await JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "12"])).run(pin_job("a"), CALink(ca))
    assert report.outcome is Outcome.PIN_INVALID
    assert backend.tokens[SERIAL].user_pin == PIN


async def test_no_key_inserted(ca: SmallCA) -> None:
    backend = fake()
    backend.pull_out(SERIAL)
    report = await JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN])).run(pin_job("a"), CALink(ca))
    assert report.outcome is Outcome.NO_KEY
    assert "没有检测到 UKey" in report.message


async def test_declined_on_pc_runs_nothing(ca: SmallCA) -> None:
    backend = fake()
    prompt = ScriptedPrompt(pins=[PIN, "135790"], confirm_answer=False)
    report = await JobRunner(lambda: backend, prompt).run(pin_job("a"), CALink(ca))
    assert report.outcome is Outcome.DECLINED
    assert backend.tokens[SERIAL].user_pin == PIN


async def test_key_pulled_out_while_writing_certificate_keeps_old_pair_and_rerun_completes(
    ca: SmallCA,
) -> None:
    backend = fake()
    old = await seed_credential(backend, SERIAL, ca, pin=PIN, so_pin="SO-998877")
    job = Job(
        "renew-pull",
        JobType.RENEWAL,
        {"key_serial": SERIAL, "subject": {"common_name": "x"}, "replaces_cert_sha256": old.cert_sha256},
    )
    backend.pull_out_at("create_object")

    report = await JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN])).run(job, CALink(ca))
    assert report.outcome is Outcome.KEY_REMOVED
    assert "UKey 被拔出" in report.message

    backend.removal_trigger = None
    backend.insert(backend.tokens[SERIAL])
    assert [p.cert_sha256 for p in await working_pairs(backend, SERIAL, pin=PIN)] == [old.cert_sha256]
    again = await JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN])).run(job, CALink(ca))
    assert again.outcome is Outcome.SUCCEEDED
    assert len(await working_pairs(backend, SERIAL, pin=PIN)) == 1


async def test_finished_job_delivered_again_is_answered_from_the_journal(tmp_path: Path, ca: SmallCA) -> None:
    backend = fake()
    journal = JobJournal(tmp_path / "jobs")
    first = await JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "135790"]), journal=journal).run(
        pin_job("once"), CALink(ca)
    )
    prompt = ScriptedPrompt(pins=[PIN, "135790"])
    again = await JobRunner(lambda: backend, prompt, journal=journal).run(pin_job("once"), CALink(ca))
    assert first == again
    assert prompt.requests == []
    assert prompt.confirmations == []
    assert backend.tokens[SERIAL].user_pin == "135790"
    assert (tmp_path / "jobs" / "once.json").stat().st_mode & 0o777 == 0o600
