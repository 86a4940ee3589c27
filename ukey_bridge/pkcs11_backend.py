"""The PyKCS11 backend: a real PKCS#11 module (a vendor's UKey driver, or SoftHSM2).

Every PyKCS11 call blocks (some UKeys take seconds to generate a key), so each goes through
``asyncio.to_thread``; a lock keeps one call at a time per session because PKCS#11 sessions
are not meant to be used from two threads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import PyKCS11

from ukey_bridge import ck
from ukey_bridge.backend import (
    AttributeValue,
    KeyProfile,
    ObjectHandle,
    PinState,
    Template,
    TokenInfo,
)
from ukey_bridge.errors import (
    ModuleLoadFailed,
    NoTokenPresent,
    PinIncorrect,
    PinLengthInvalid,
    PinLocked,
    TokenError,
    TokenOperationFailed,
    TokenRemoved,
)

T = TypeVar("T")

# A reader slot that is no longer there (hot-plug drivers drop the slot with the key; SoftHSM2
# does so once a deleted token's module is reloaded) means the key was pulled out.
_REMOVED = {
    ck.CKR_SLOT_ID_INVALID,
    ck.CKR_DEVICE_REMOVED,
    ck.CKR_SESSION_HANDLE_INVALID,
    ck.CKR_SESSION_CLOSED,
    ck.CKR_DEVICE_ERROR,
}
_ABSENT = {ck.CKR_TOKEN_NOT_PRESENT, ck.CKR_TOKEN_NOT_RECOGNIZED}


def translate_error(exc: PyKCS11.PyKCS11Error, pin_state: PinState | None = None) -> TokenError:
    """Map a PyKCS11 error to the bridge's tree; ``pin_state`` is re-read after a wrong PIN."""
    code = int(exc.value)
    if code == ck.CKR_PIN_INCORRECT:
        if pin_state is not None and pin_state.locked:
            return PinLocked("the PIN is locked")
        return PinIncorrect(
            tries_left=pin_state.tries_left if pin_state else None,
            final_try=bool(pin_state and pin_state.final_try),
            count_low=bool(pin_state and pin_state.count_low),
        )
    if code == ck.CKR_PIN_LOCKED:
        return PinLocked("the PIN is locked")
    if code in (ck.CKR_PIN_LEN_RANGE, ck.CKR_PIN_INVALID):
        return PinLengthInvalid("the key does not accept a PIN of this length or these characters")
    if code in _ABSENT:
        return NoTokenPresent("no key is inserted")
    if code in _REMOVED:
        return TokenRemoved("the key was removed during the operation")
    if code < 0:
        return ModuleLoadFailed(str(exc))
    return TokenOperationFailed(str(exc), code=code)


@dataclass
class Pkcs11Config:
    module_path: str
    key_profile: KeyProfile = field(default_factory=KeyProfile)


def _to_pykcs11_template(template: Template) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for attribute, value in template.items():
        if isinstance(value, bool):
            out.append((attribute, PyKCS11.CK_TRUE if value else PyKCS11.CK_FALSE))
        else:
            out.append((attribute, value))
    return out


def _normalise(value: Any) -> AttributeValue | None:
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return value
    # binary attributes come back as tuples/lists of ints
    return bytes(value)


class Pkcs11Session:
    def __init__(self, backend: Pkcs11Backend, session: Any, slot_id: int) -> None:
        self._backend = backend
        self._session = session
        self._slot_id = slot_id
        self._handles: dict[int, Any] = {}

    def _remember(self, handle: Any) -> ObjectHandle:
        number = int(handle.value())
        self._handles[number] = handle
        return number

    def _handle(self, number: ObjectHandle) -> Any:
        try:
            return self._handles[number]
        except KeyError:
            raise TokenOperationFailed(
                f"unknown object handle {number}", code=ck.CKR_OBJECT_HANDLE_INVALID
            ) from None

    async def _call(self, fn: Callable[[], T]) -> T:
        return await self._backend.run(fn)

    async def login(self, pin: str, *, so: bool = False) -> None:
        user_type = ck.CKU_SO if so else ck.CKU_USER
        try:
            await self._backend.run_raw(lambda: self._session.login(pin, user_type=user_type))
        except PyKCS11.PyKCS11Error as exc:
            state = None
            if int(exc.value) == ck.CKR_PIN_INCORRECT and not so:
                state = await self._backend.pin_state(self._slot_id)
            raise translate_error(exc, state) from exc

    async def logout(self) -> None:
        await self._call(self._session.logout)

    async def generate_key_pair(
        self, public_template: Template, private_template: Template, mechanism: int
    ) -> tuple[ObjectHandle, ObjectHandle]:
        pub, priv = await self._call(
            lambda: self._session.generateKeyPair(
                _to_pykcs11_template(public_template),
                _to_pykcs11_template(private_template),
                PyKCS11.Mechanism(mechanism, None),
            )
        )
        # generateKeyPair returns bare low-level handles; wrap them like findObjects does
        return self._remember(self._wrap(pub)), self._remember(self._wrap(priv))

    def _wrap(self, raw: Any) -> Any:
        wrapped = PyKCS11.CK_OBJECT_HANDLE(self._session)
        wrapped.assign(raw.value())
        return wrapped

    async def sign(self, key: ObjectHandle, data: bytes, mechanism: int) -> bytes:
        handle = self._handle(key)
        signature = await self._call(
            lambda: self._session.sign(handle, data, PyKCS11.Mechanism(mechanism, None))
        )
        return bytes(signature)

    async def find_objects(self, template: Template) -> list[ObjectHandle]:
        found = await self._call(lambda: self._session.findObjects(_to_pykcs11_template(template)))
        return [self._remember(h) for h in found]

    async def get_attributes(
        self, handle: ObjectHandle, attributes: Sequence[int]
    ) -> dict[int, AttributeValue | None]:
        obj = self._handle(handle)
        values = await self._call(lambda: self._session.getAttributeValue(obj, list(attributes)))
        return {a: _normalise(v) for a, v in zip(attributes, values, strict=True)}

    async def create_object(self, template: Template) -> ObjectHandle:
        handle = await self._call(lambda: self._session.createObject(_to_pykcs11_template(template)))
        return self._remember(self._wrap(handle))

    async def destroy_object(self, handle: ObjectHandle) -> None:
        obj = self._handle(handle)
        await self._call(lambda: self._session.destroyObject(obj))
        self._handles.pop(handle, None)

    async def init_pin(self, new_pin: str) -> None:
        await self._call(lambda: self._session.initPin(new_pin))

    async def set_pin(self, old_pin: str, new_pin: str) -> None:
        try:
            await self._backend.run_raw(lambda: self._session.setPin(old_pin, new_pin))
        except PyKCS11.PyKCS11Error as exc:
            state = None
            if int(exc.value) == ck.CKR_PIN_INCORRECT:
                state = await self._backend.pin_state(self._slot_id)
            raise translate_error(exc, state) from exc

    async def close(self) -> None:
        # a session of a pulled key is already gone
        with contextlib.suppress(TokenRemoved):
            await self._call(self._session.closeSession)


class Pkcs11Backend:
    """A PKCS#11 module loaded on first use and released by ``close()``.

    Loading late matters: SoftHSM2 reads ``SOFTHSM2_CONF`` and real drivers enumerate readers
    when the module is initialised, so each job starts from a fresh view of the inserted keys.
    """

    def __init__(self, config: Pkcs11Config) -> None:
        self.config = config
        self.key_profile = config.key_profile
        self._lib: Any = None
        self._lock = threading.Lock()

    async def run_raw(self, fn: Callable[[], T]) -> T:
        """Run a blocking PyKCS11 call in a worker thread, one at a time, errors untranslated."""

        def locked() -> T:
            with self._lock:
                return fn()

        return await asyncio.to_thread(locked)

    async def run(self, fn: Callable[[], T]) -> T:
        try:
            return await self.run_raw(fn)
        except PyKCS11.PyKCS11Error as exc:
            raise translate_error(exc) from exc

    async def _library(self) -> Any:
        if self._lib is None:
            path = self.config.module_path

            def load() -> Any:
                return PyKCS11.PyKCS11Lib().load(path)

            self._lib = await self.run(load)
        return self._lib

    async def pin_state(self, slot_id: int) -> PinState:
        lib = await self._library()
        info = await self.run(lambda: lib.getTokenInfo(slot_id))
        return PinState.from_flags(int(info.flags))

    async def list_tokens(self) -> list[TokenInfo]:
        lib = await self._library()

        def scan() -> list[TokenInfo]:
            tokens = []
            for slot in lib.getSlotList(tokenPresent=True):
                info = lib.getTokenInfo(slot)
                if not int(info.flags) & ck.CKF_TOKEN_INITIALIZED:
                    continue  # an empty reader slot (SoftHSM2 always offers one)
                tokens.append(
                    TokenInfo(
                        slot_id=int(slot),
                        serial=str(info.serialNumber).strip(),
                        label=str(info.label).strip(),
                        manufacturer=str(info.manufacturerID).strip(),
                        model=str(info.model).strip(),
                        pin=PinState.from_flags(int(info.flags)),
                    )
                )
            return tokens

        return await self.run(scan)

    async def list_blank_slots(self) -> list[int]:
        lib = await self._library()

        def scan() -> list[int]:
            return [
                int(slot)
                for slot in lib.getSlotList(tokenPresent=True)
                if not int(lib.getTokenInfo(slot).flags) & ck.CKF_TOKEN_INITIALIZED
            ]

        return await self.run(scan)

    async def init_token(self, slot_id: int, so_pin: str, label: str) -> TokenInfo:
        lib = await self._library()
        # CK_TOKEN_INFO labels are 32 bytes padded with blanks, not NULs
        padded = label.encode("utf-8")[:32].decode("utf-8", "ignore").ljust(32)
        await self.run(lambda: lib.initToken(slot_id, so_pin, padded))
        # SoftHSM2 keeps the token in its slot and opens a new empty slot; other modules may
        # renumber, so the token is found again by its (job-specific) label
        tokens = [t for t in await self.list_tokens() if t.label == label.strip()]
        tokens.sort(key=lambda t: t.slot_id != slot_id)
        if not tokens:
            raise TokenOperationFailed("the key was initialised but is no longer listed")
        return tokens[0]

    async def open_session(self, slot_id: int, *, read_write: bool) -> Pkcs11Session:
        lib = await self._library()
        flags = PyKCS11.CKF_RW_SESSION if read_write else 0
        session = await self.run(lambda: lib.openSession(slot_id, flags))
        return Pkcs11Session(self, session, slot_id)

    async def close(self) -> None:
        lib, self._lib = self._lib, None
        if lib is not None:
            await self.run(lib.unload)
