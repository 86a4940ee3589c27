"""What the bridge needs from a PKCS#11 module, as a Protocol two backends implement.

Templates are PKCS#11 attribute maps (``ukey_bridge.ck`` numbers to values), so the job code
reads like the PKCS#11 table it follows and the fake backend models the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ukey_bridge import ck

AttributeValue = int | bool | bytes | str
Template = Mapping[int, AttributeValue]
ObjectHandle = int


@dataclass(frozen=True)
class PinState:
    """The user-PIN flags of a token; ``tries_left`` only when the module can tell a number."""

    count_low: bool
    final_try: bool
    locked: bool
    to_be_changed: bool
    tries_left: int | None = None

    @classmethod
    def from_flags(cls, flags: int) -> PinState:
        locked = bool(flags & ck.CKF_USER_PIN_LOCKED)
        final_try = bool(flags & ck.CKF_USER_PIN_FINAL_TRY)
        # PKCS#11 has no counter, but the flags pin down the two numbers that matter most
        tries_left = 0 if locked else (1 if final_try else None)
        return cls(
            count_low=bool(flags & ck.CKF_USER_PIN_COUNT_LOW),
            final_try=final_try,
            locked=locked,
            to_be_changed=bool(flags & ck.CKF_USER_PIN_TO_BE_CHANGED),
            tries_left=tries_left,
        )


@dataclass(frozen=True)
class TokenInfo:
    slot_id: int
    serial: str
    label: str
    manufacturer: str
    model: str
    pin: PinState


class KeyAlgorithm(StrEnum):
    EC_P256 = "ec-p256"
    RSA = "rsa"


@dataclass(frozen=True)
class KeyProfile:
    """How to make and use keys on one vendor's token.

    Vendors of Chinese keys use their own mechanism numbers (SM2 among them), so every number
    is configurable; the defaults are the standard PKCS#11 ones.
    """

    algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256
    rsa_bits: int = 2048
    ec_params: bytes = ck.EC_PARAMS_P256
    keygen_mechanism: int | None = None
    sign_mechanism: int | None = None

    @property
    def keygen(self) -> int:
        if self.keygen_mechanism is not None:
            return self.keygen_mechanism
        return (
            ck.CKM_EC_KEY_PAIR_GEN if self.algorithm is KeyAlgorithm.EC_P256 else ck.CKM_RSA_PKCS_KEY_PAIR_GEN
        )

    @property
    def sign(self) -> int:
        if self.sign_mechanism is not None:
            return self.sign_mechanism
        return ck.CKM_ECDSA if self.algorithm is KeyAlgorithm.EC_P256 else ck.CKM_SHA256_RSA_PKCS


class TokenSession(Protocol):
    """One PKCS#11 session on one token. Methods raise ``ukey_bridge.errors.TokenError``."""

    async def login(self, pin: str, *, so: bool = False) -> None: ...

    async def logout(self) -> None: ...

    async def generate_key_pair(
        self, public_template: Template, private_template: Template, mechanism: int
    ) -> tuple[ObjectHandle, ObjectHandle]: ...

    async def sign(self, key: ObjectHandle, data: bytes, mechanism: int) -> bytes: ...

    async def find_objects(self, template: Template) -> list[ObjectHandle]: ...

    async def get_attributes(
        self, handle: ObjectHandle, attributes: Sequence[int]
    ) -> dict[int, AttributeValue | None]: ...

    async def create_object(self, template: Template) -> ObjectHandle: ...

    async def destroy_object(self, handle: ObjectHandle) -> None: ...

    async def init_pin(self, new_pin: str) -> None: ...

    async def set_pin(self, old_pin: str, new_pin: str) -> None: ...

    async def close(self) -> None: ...


class TokenBackend(Protocol):
    """A PKCS#11 module: the tokens it sees and sessions on them."""

    key_profile: KeyProfile

    async def list_tokens(self) -> list[TokenInfo]:
        """The initialised tokens that are present."""
        ...

    async def list_blank_slots(self) -> list[int]:
        """Slots holding a token that was never initialised (a new key from the factory)."""
        ...

    async def init_token(self, slot_id: int, so_pin: str, label: str) -> TokenInfo:
        """C_InitToken: make the blank token in ``slot_id`` a token with this SO PIN and label.

        Returns the initialised token as the module now reports it (its serial above all).
        """
        ...

    async def open_session(self, slot_id: int, *, read_write: bool) -> TokenSession: ...

    async def close(self) -> None:
        """Release the module; the backend may be opened again by the next call."""
        ...
