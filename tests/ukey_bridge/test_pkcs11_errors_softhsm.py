"""PKCS#11 failures of a real module (SoftHSM2) reach the bridge as its own exceptions.

Every error here is produced by SoftHSM2 itself through the production ``Pkcs11Backend``;
nothing is raised by the test. Two PIN states SoftHSM2 2.6 cannot reach on its own (it never
counts down to "final try" or "locked") are set in the token's own flag word, which is what a
hardware key reports in ``CK_TOKEN_INFO.flags`` after its counter ran down; SoftHSM2 then
reports them through ``C_GetTokenInfo`` like any token would (see ``set_token_flags``).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import PyKCS11
import pytest

from tests.softhsm_fixtures import SoftHsmStore
from tests.ukey_bridge.support import SO_PIN, USER_PIN, CALink, ScriptedPrompt, SmallCA, SoftHsmToken
from ukey_bridge import ck
from ukey_bridge.backend import TokenInfo
from ukey_bridge.errors import (
    ModuleLoadFailed,
    NoTokenPresent,
    PinIncorrect,
    PinLengthInvalid,
    PinLocked,
    TokenOperationFailed,
    TokenRemoved,
)
from ukey_bridge.i18n import Texts
from ukey_bridge.jobs import Job, JobRunner
from ukey_bridge.pkcs11_backend import Pkcs11Backend, Pkcs11Config
from ukey_bridge.protocol import JobType, Outcome

pytestmark = pytest.mark.softhsm

WRONG_PIN = "00000000"

# SoftHSM2's file object store keeps the token flags as a vendor attribute
# (CKA_OS_TOKENFLAGS = CKA_VENDOR_DEFINED + 0x534B) of kind 2 (an unsigned long), each field a
# big-endian 64-bit word: attribute type, kind, value.
_TOKEN_FLAGS_RECORD = struct.pack(">QQ", 0x8000534B, 2)


def set_token_flags(token: SoftHsmToken, flags: int) -> None:
    """Add ``flags`` to the token's stored flag word, as the key's firmware would."""
    (store,) = (token.conf.parent / "tokens").glob("*/token.object")
    data = bytearray(store.read_bytes())
    at = data.find(_TOKEN_FLAGS_RECORD)
    assert at >= 0, "SoftHSM2's token file has no flag word where 2.6 keeps it"
    value_at = at + len(_TOKEN_FLAGS_RECORD)
    (current,) = struct.unpack(">Q", data[value_at : value_at + 8])
    data[value_at : value_at + 8] = struct.pack(">Q", current | flags)
    store.write_bytes(bytes(data))


def softhsm2_util(token: SoftHsmToken, *args: str) -> None:
    util = shutil.which("softhsm2-util")
    assert util is not None
    subprocess.run([util, *args], env=token.env(), check=True, capture_output=True)  # noqa: S603 - fixed tool


async def only_token(backend: Pkcs11Backend) -> TokenInfo:
    (token,) = await backend.list_tokens()
    return token


async def login_error(token: SoftHsmToken, pin: str, *, so: bool = False) -> BaseException:
    backend = token.backend()
    try:
        session = await backend.open_session((await only_token(backend)).slot_id, read_write=True)
        try:
            with pytest.raises((PinIncorrect, PinLocked)) as refused:
                await session.login(pin, so=so)
        finally:
            await session.close()
    finally:
        await backend.close()
    return refused.value


def pkcs11_code(exc: BaseException) -> int:
    cause = exc.__cause__
    assert isinstance(cause, PyKCS11.PyKCS11Error), f"{exc!r} does not come from PyKCS11"
    return int(cause.value)


async def test_a_wrong_user_pin_is_pin_incorrect_with_the_count_low_flag_the_token_sets(
    softhsm: SoftHsmToken,
) -> None:
    refused = await login_error(softhsm, WRONG_PIN)

    assert isinstance(refused, PinIncorrect)
    assert pkcs11_code(refused) == ck.CKR_PIN_INCORRECT
    # SoftHSM2 reports no counter, only "count low" after a failure: no number is made up
    assert (refused.tries_left, refused.count_low, refused.final_try) == (None, True, False)


async def test_a_wrong_pin_on_a_key_at_its_final_try_reports_one_try_left(softhsm: SoftHsmToken) -> None:
    set_token_flags(softhsm, ck.CKF_USER_PIN_FINAL_TRY)

    refused = await login_error(softhsm, WRONG_PIN)

    assert isinstance(refused, PinIncorrect)
    assert (refused.tries_left, refused.final_try) == (1, True)


async def test_a_wrong_pin_on_a_key_that_reports_itself_locked_is_pin_locked(softhsm: SoftHsmToken) -> None:
    set_token_flags(softhsm, ck.CKF_USER_PIN_LOCKED)

    refused = await login_error(softhsm, WRONG_PIN)

    assert isinstance(refused, PinLocked)
    assert pkcs11_code(refused) == ck.CKR_PIN_INCORRECT


async def test_a_wrong_so_pin_is_pin_incorrect_without_a_user_pin_count(softhsm: SoftHsmToken) -> None:
    refused = await login_error(softhsm, WRONG_PIN, so=True)

    assert isinstance(refused, PinIncorrect)
    assert (refused.tries_left, refused.count_low, refused.final_try) == (None, False, False)


async def test_the_job_on_a_final_try_key_warns_before_the_pin_and_reports_one_try_left(
    softhsm: SoftHsmToken, ca: SmallCA
) -> None:
    set_token_flags(softhsm, ck.CKF_USER_PIN_FINAL_TRY)
    prompt = ScriptedPrompt(pins=[WRONG_PIN])
    job = Job("job-final-try", JobType.PIN_CHANGE, {"key_serial": softhsm.serial})

    # the helper speaks Chinese by default; this test reads the English texts (--lang en)
    report = await JobRunner(softhsm.backend, prompt, texts=Texts("en")).run(job, CALink(ca))

    assert prompt.requests[0].warning == "This is the final try: a wrong PIN now locks the key."
    assert (report.outcome, report.tries_left, report.final_try) == (Outcome.WRONG_PIN, 1, True)
    assert report.message == "The PIN is wrong. One try is left: another wrong PIN locks the key."


async def test_a_job_on_a_locked_key_reports_pin_locked_without_asking_for_the_pin(
    softhsm: SoftHsmToken, ca: SmallCA
) -> None:
    set_token_flags(softhsm, ck.CKF_USER_PIN_LOCKED)
    prompt = ScriptedPrompt(pins=[USER_PIN])
    job = Job("job-locked", JobType.PIN_CHANGE, {"key_serial": softhsm.serial})

    report = await JobRunner(softhsm.backend, prompt).run(job, CALink(ca))

    assert (report.outcome, report.tries_left) == (Outcome.PIN_LOCKED, 0)
    assert prompt.requests == []


async def test_a_new_pin_shorter_than_the_key_accepts_is_pin_length_invalid(softhsm: SoftHsmToken) -> None:
    backend = softhsm.backend()
    try:
        session = await backend.open_session((await only_token(backend)).slot_id, read_write=True)
        await session.login(USER_PIN)
        with pytest.raises(PinLengthInvalid) as refused:
            await session.set_pin(USER_PIN, "12")
        await session.close()
    finally:
        await backend.close()
    assert pkcs11_code(refused.value) == ck.CKR_PIN_LEN_RANGE
    assert softhsm.pkcs11_tool("--login", "--pin", USER_PIN, "--list-objects").returncode == 0


async def test_a_write_in_a_read_only_session_fails_with_its_pkcs11_code(softhsm: SoftHsmToken) -> None:
    backend = softhsm.backend()
    try:
        session = await backend.open_session((await only_token(backend)).slot_id, read_write=False)
        await session.login(USER_PIN)
        with pytest.raises(TokenOperationFailed) as refused:
            await session.create_object(
                {ck.CKA_CLASS: ck.CKO_DATA, ck.CKA_TOKEN: True, ck.CKA_LABEL: "not written"}
            )
        await session.close()
    finally:
        await backend.close()
    assert refused.value.code == ck.CKR_SESSION_READ_ONLY
    assert "not written" not in softhsm.pkcs11_tool("--login", "--pin", USER_PIN, "--list-objects").stdout


async def test_the_empty_reader_slot_is_no_token_present(softhsm_store: SoftHsmStore) -> None:
    backend = softhsm_store.backend()
    try:
        (blank,) = await backend.list_blank_slots()
        with pytest.raises(NoTokenPresent) as refused:
            await backend.open_session(blank, read_write=False)
    finally:
        await backend.close()
    assert pkcs11_code(refused.value) == ck.CKR_TOKEN_NOT_RECOGNIZED


async def test_a_job_with_no_initialised_key_inserted_reports_no_key(
    softhsm_store: SoftHsmStore, ca: SmallCA
) -> None:
    job = Job("job-no-key", JobType.PIN_CHANGE, {"key_serial": "0000000000000000"})

    report = await JobRunner(softhsm_store.backend, ScriptedPrompt(pins=[USER_PIN])).run(job, CALink(ca))

    assert report.outcome is Outcome.NO_KEY


async def test_sessions_closed_under_the_bridge_are_token_removed(softhsm: SoftHsmToken) -> None:
    backend = softhsm.backend()
    # Another program on the PC loads the same module and closes every session of the slot,
    # which is what a driver does to the sessions of a key that is pulled out.
    other = PyKCS11.PyKCS11Lib()
    try:
        slot = (await only_token(backend)).slot_id
        session = await backend.open_session(slot, read_write=True)
        other.load(softhsm.module)
        other.closeAllSessions(slot)
        with pytest.raises(TokenRemoved) as refused:
            await session.login(USER_PIN)
        await session.close()  # a vanished session closes quietly
    finally:
        await backend.close()
        # the module stays initialised while any handle holds it; later tests need it unloaded
        other.unload()
    assert pkcs11_code(refused.value) == ck.CKR_SESSION_HANDLE_INVALID


async def test_a_key_whose_slot_is_gone_when_the_job_opens_it_is_token_removed(softhsm: SoftHsmToken) -> None:
    seen = softhsm.backend()
    slot = (await only_token(seen)).slot_id
    await seen.close()
    softhsm2_util(softhsm, "--delete-token", "--serial", softhsm.serial)  # the key is taken away
    backend = softhsm.backend()
    try:
        with pytest.raises(TokenRemoved) as refused:
            await backend.open_session(slot, read_write=False)
    finally:
        await backend.close()
    assert pkcs11_code(refused.value) == ck.CKR_SLOT_ID_INVALID


async def test_a_module_that_cannot_be_loaded_is_module_load_failed(tmp_path: Path) -> None:
    backend = Pkcs11Backend(Pkcs11Config(str(tmp_path / "no-such-driver.so")))
    with pytest.raises(ModuleLoadFailed):
        await backend.list_tokens()
    await backend.close()


async def test_a_second_token_expected_by_serial_is_wrong_key_listing_what_is_inserted(
    softhsm: SoftHsmToken, ca: SmallCA
) -> None:
    # a second key is inserted
    softhsm2_util(
        softhsm, "--init-token", "--free", "--label", "OtherKey", "--so-pin", SO_PIN, "--pin", USER_PIN
    )
    job = Job("job-wrong-key", JobType.PIN_CHANGE, {"key_serial": "0000000000000000"})

    report = await JobRunner(softhsm.backend, ScriptedPrompt(pins=[USER_PIN])).run(job, CALink(ca))

    assert report.outcome is Outcome.WRONG_KEY
    assert softhsm.serial in report.data["found_serials"]
    assert len(report.data["found_serials"]) == 2
