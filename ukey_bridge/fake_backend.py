"""An in-memory PKCS#11 token that models what SoftHSM2 does not: PIN counters and lock-out.

Like a typical UKey it allows ``max_tries`` wrong user PINs: after the first the token reports
CKF_USER_PIN_COUNT_LOW, with one left CKF_USER_PIN_FINAL_TRY, then CKF_USER_PIN_LOCKED. A
correct PIN resets the counter. It can also be pulled out at a chosen operation, which is how
tests show that a job survives a key removed mid-way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ukey_bridge import ck
from ukey_bridge.backend import AttributeValue, KeyProfile, ObjectHandle, PinState, Template, TokenInfo
from ukey_bridge.errors import (
    NoTokenPresent,
    PinIncorrect,
    PinLengthInvalid,
    PinLocked,
    TokenOperationFailed,
    TokenRemoved,
)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
RemovalTrigger = Callable[[str], bool]


@dataclass
class FakeToken:
    serial: str
    label: str
    user_pin: str
    so_pin: str
    max_tries: int = 6
    min_pin_len: int = 6
    max_pin_len: int = 16
    slot_id: int = 0
    present: bool = True
    # a blank key from the factory: no SO PIN, no user PIN, not listed until initialised
    initialised: bool = True
    user_failures: int = 0
    so_failures: int = 0
    to_be_changed: bool = False
    objects: dict[ObjectHandle, dict[int, AttributeValue]] = field(default_factory=dict)
    private_keys: dict[ObjectHandle, PrivateKey] = field(default_factory=dict)

    @property
    def tries_left(self) -> int:
        return max(self.max_tries - self.user_failures, 0)

    @property
    def pin_state(self) -> PinState:
        left = self.tries_left
        return PinState(
            count_low=self.user_failures > 0 and left > 0,
            final_try=left == 1,
            locked=left == 0,
            to_be_changed=self.to_be_changed,
            tries_left=left,
        )


def _ec_point_der(key: ec.EllipticCurvePublicKey) -> bytes:
    point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    # CKA_EC_POINT is a DER OCTET STRING around the point, as SoftHSM2 and most modules give it
    return bytes([0x04, len(point)]) + point


class FakeSession:
    def __init__(self, backend: FakeBackend, token: FakeToken, read_write: bool) -> None:
        self._backend = backend
        self._token = token
        self._read_write = read_write
        self._user: str | None = None  # "user" or "so"
        self._open = True

    def _check(self, operation: str) -> None:
        trigger = self._backend.removal_trigger
        if trigger is not None and self._token.present and trigger(operation):
            self._token.present = False
        if not self._token.present or not self._open:
            raise TokenRemoved("the key was removed during the operation")

    def _check_pin_length(self, pin: str) -> None:
        if not self._token.min_pin_len <= len(pin) <= self._token.max_pin_len:
            raise PinLengthInvalid("the key does not accept a PIN of this length")

    async def login(self, pin: str, *, so: bool = False) -> None:
        self._check("login")
        token = self._token
        if so:
            if token.so_failures >= token.max_tries:
                raise PinLocked("the SO PIN is locked")
            if pin != token.so_pin:
                token.so_failures += 1
                raise PinIncorrect(
                    tries_left=token.max_tries - token.so_failures,
                    final_try=token.max_tries - token.so_failures == 1,
                    count_low=True,
                )
            token.so_failures = 0
            self._user = "so"
            return
        if not token.user_pin:
            raise TokenOperationFailed("the user PIN was never set", code=ck.CKR_USER_PIN_NOT_INITIALIZED)
        if token.tries_left == 0:
            raise PinLocked("the PIN is locked")
        if pin != token.user_pin:
            raise self._wrong_user_pin()
        token.user_failures = 0
        self._user = "user"

    def _wrong_user_pin(self) -> PinIncorrect | PinLocked:
        self._token.user_failures += 1
        state = self._token.pin_state
        if state.locked:
            return PinLocked("the PIN is locked")
        return PinIncorrect(tries_left=state.tries_left, final_try=state.final_try, count_low=state.count_low)

    async def logout(self) -> None:
        self._check("logout")
        self._user = None

    def _require_user(self) -> None:
        if self._user != "user":
            raise TokenOperationFailed("user not logged in", code=ck.CKR_USER_NOT_LOGGED_IN)

    def _require_rw(self) -> None:
        if not self._read_write:
            raise TokenOperationFailed("read-only session", code=0xB5)

    def _store(self, attributes: dict[int, AttributeValue]) -> ObjectHandle:
        handle = next(self._backend.handles)
        self._token.objects[handle] = attributes
        return handle

    async def generate_key_pair(
        self, public_template: Template, private_template: Template, mechanism: int
    ) -> tuple[ObjectHandle, ObjectHandle]:
        self._check("generate_key_pair")
        self._require_user()
        self._require_rw()
        public: dict[int, AttributeValue] = {ck.CKA_CLASS: ck.CKO_PUBLIC_KEY, ck.CKA_PRIVATE: False}
        private: dict[int, AttributeValue] = {ck.CKA_CLASS: ck.CKO_PRIVATE_KEY, ck.CKA_PRIVATE: True}
        public.update(public_template)
        private.update(private_template)
        key: PrivateKey
        if mechanism == ck.CKM_EC_KEY_PAIR_GEN:
            if public_template.get(ck.CKA_EC_PARAMS) != ck.EC_PARAMS_P256:
                raise TokenOperationFailed("only P-256 is modelled", code=0x12)
            key = ec.generate_private_key(ec.SECP256R1())
            public.update({ck.CKA_KEY_TYPE: ck.CKK_EC, ck.CKA_EC_POINT: _ec_point_der(key.public_key())})
            private[ck.CKA_KEY_TYPE] = ck.CKK_EC
        elif mechanism == ck.CKM_RSA_PKCS_KEY_PAIR_GEN:
            bits = int(public_template.get(ck.CKA_MODULUS_BITS, 2048))
            key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
            numbers = key.public_key().public_numbers()
            public.update(
                {
                    ck.CKA_KEY_TYPE: ck.CKK_RSA,
                    ck.CKA_MODULUS: numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"),
                    ck.CKA_PUBLIC_EXPONENT: numbers.e.to_bytes(3, "big"),
                }
            )
            private[ck.CKA_KEY_TYPE] = ck.CKK_RSA
        else:
            raise TokenOperationFailed(f"mechanism {mechanism:#x} is not modelled", code=0x70)
        pub_handle = self._store(public)
        priv_handle = self._store(private)
        self._token.private_keys[priv_handle] = key
        return pub_handle, priv_handle

    async def sign(self, key: ObjectHandle, data: bytes, mechanism: int) -> bytes:
        self._check("sign")
        self._require_user()
        private = self._token.private_keys.get(key)
        if private is None:
            raise TokenOperationFailed("not a private key", code=ck.CKR_OBJECT_HANDLE_INVALID)
        if mechanism == ck.CKM_ECDSA and isinstance(private, ec.EllipticCurvePrivateKey):
            der = private.sign(data, ec.ECDSA(Prehashed(hashes.SHA256())))
            r, s = decode_dss_signature(der)
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if mechanism == ck.CKM_SHA256_RSA_PKCS and isinstance(private, rsa.RSAPrivateKey):
            return private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        raise TokenOperationFailed(f"mechanism {mechanism:#x} does not fit the key", code=0x70)

    def _visible(self, attributes: dict[int, AttributeValue]) -> bool:
        return self._user == "user" or not attributes.get(ck.CKA_PRIVATE, False)

    async def find_objects(self, template: Template) -> list[ObjectHandle]:
        self._check("find_objects")
        return [
            handle
            for handle, attributes in self._token.objects.items()
            if self._visible(attributes) and all(attributes.get(a) == v for a, v in template.items())
        ]

    async def get_attributes(
        self, handle: ObjectHandle, attributes: Sequence[int]
    ) -> dict[int, AttributeValue | None]:
        self._check("get_attributes")
        stored = self._token.objects.get(handle)
        if stored is None or not self._visible(stored):
            raise TokenOperationFailed("no such object", code=ck.CKR_OBJECT_HANDLE_INVALID)
        return {a: stored.get(a) for a in attributes}

    async def create_object(self, template: Template) -> ObjectHandle:
        self._check("create_object")
        self._require_rw()
        if template.get(ck.CKA_PRIVATE, False):
            self._require_user()
        return self._store(dict(template))

    async def destroy_object(self, handle: ObjectHandle) -> None:
        self._check("destroy_object")
        self._require_rw()
        stored = self._token.objects.get(handle)
        if stored is None or not self._visible(stored):
            raise TokenOperationFailed("no such object", code=ck.CKR_OBJECT_HANDLE_INVALID)
        del self._token.objects[handle]
        self._token.private_keys.pop(handle, None)

    async def init_pin(self, new_pin: str) -> None:
        self._check("init_pin")
        if self._user != "so":
            raise TokenOperationFailed("SO not logged in", code=ck.CKR_USER_NOT_LOGGED_IN)
        self._check_pin_length(new_pin)
        self._token.user_pin = new_pin
        self._token.user_failures = 0
        # the issuer's reset PIN is known to everyone who read the manual: the key asks for a new one
        self._token.to_be_changed = True

    async def set_pin(self, old_pin: str, new_pin: str) -> None:
        self._check("set_pin")
        self._require_rw()
        token = self._token
        if token.tries_left == 0:
            raise PinLocked("the PIN is locked")
        if old_pin != token.user_pin:
            raise self._wrong_user_pin()
        self._check_pin_length(new_pin)
        token.user_pin = new_pin
        token.user_failures = 0
        token.to_be_changed = False

    async def close(self) -> None:
        self._open = False


class FakeBackend:
    """Tokens keyed by serial; the same instance keeps its state across jobs like a real key."""

    def __init__(self, tokens: Sequence[FakeToken] = (), key_profile: KeyProfile | None = None) -> None:
        self.key_profile = key_profile or KeyProfile()
        self.tokens: dict[str, FakeToken] = {}
        self.handles = itertools.count(1)
        self.removal_trigger: RemovalTrigger | None = None
        for token in tokens:
            self.insert(token)

    def insert(self, token: FakeToken) -> None:
        token.slot_id = token.slot_id or len(self.tokens) + 1
        token.present = True
        self.tokens[token.serial] = token

    def pull_out(self, serial: str) -> None:
        self.tokens[serial].present = False

    def pull_out_at(self, operation: str, *, occurrence: int = 1) -> None:
        """Remove the key when ``operation`` is called the ``occurrence``-th time."""
        seen = 0

        def trigger(name: str) -> bool:
            nonlocal seen
            if name != operation:
                return False
            seen += 1
            return seen == occurrence

        self.removal_trigger = trigger

    async def list_tokens(self) -> list[TokenInfo]:
        return [
            TokenInfo(
                slot_id=t.slot_id,
                serial=t.serial,
                label=t.label,
                manufacturer="sealbot fake",
                model="fake UKey",
                pin=t.pin_state,
            )
            for t in self.tokens.values()
            if t.present and t.initialised
        ]

    async def list_blank_slots(self) -> list[int]:
        return [t.slot_id for t in self.tokens.values() if t.present and not t.initialised]

    async def init_token(self, slot_id: int, so_pin: str, label: str) -> TokenInfo:
        for token in self.tokens.values():
            if token.slot_id == slot_id and token.present:
                # a module may re-initialise, but only under the current SO PIN
                if token.initialised and so_pin != token.so_pin:
                    raise PinIncorrect(tries_left=None, final_try=False, count_low=False)
                token.initialised, token.so_pin, token.label = True, so_pin, label
                token.user_pin, token.user_failures, token.so_failures = "", 0, 0
                token.objects.clear()
                token.private_keys.clear()
                return next(t for t in await self.list_tokens() if t.slot_id == slot_id)
        raise NoTokenPresent("no key is inserted")

    async def open_session(self, slot_id: int, *, read_write: bool) -> FakeSession:
        for token in self.tokens.values():
            if token.slot_id == slot_id:
                if not token.present:
                    raise NoTokenPresent("no key is inserted")
                return FakeSession(self, token, read_write)
        raise NoTokenPresent("no key is inserted")

    async def close(self) -> None:
        return None
