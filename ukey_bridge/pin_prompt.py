"""How the person at the PC confirms a job and types PINs: the only place a PIN is entered.

``PinPrompt`` is injected into the job runner: the terminal implementation uses getpass, the
local page (``ukey_bridge.local_page``) serves a form on 127.0.0.1, tests script the answers.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TextIO

from ukey_bridge.backend import PinState
from ukey_bridge.errors import PinEntryCancelled
from ukey_bridge.i18n import CHINESE, Texts

RESET_PIN = "12345678"  # what an unlock sets; kept when no new PIN is typed
YES = frozenset({"y", "yes", "是", "好", "确定", "办理"})


class PinKind(StrEnum):
    USER = "user"  # the current user PIN, to log in
    NEW_USER = "new_user"  # a new user PIN, typed twice


@dataclass(frozen=True)
class JobExplanation:
    job_id: str
    job_type: str
    title: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class PinRequest:
    kind: PinKind
    key_serial: str
    key_label: str
    warning: str | None = None
    optional: bool = False  # the person may skip (setting a new PIN after an unlock)
    # the key's own PIN flags when the current PIN is asked: the chat warns from these only
    state: PinState | None = None


class PinPrompt(Protocol):
    async def confirm(self, explanation: JobExplanation) -> bool:
        """Whether the person at the PC agrees to run the job."""
        ...

    async def ask_pin(self, request: PinRequest) -> str | None:
        """The PIN typed; None only when ``request.optional`` and skipped.

        Raises ``PinEntryCancelled`` when the person gives up.
        """
        ...

    async def notify(self, text: str) -> None:
        """Show a line of news (the job's outcome) to the person at the PC."""
        ...


class TerminalPinPrompt:
    """Prompts in the terminal ``ukey-bridge run`` was started in; PINs are not echoed."""

    def __init__(
        self,
        *,
        read_line: Callable[[str], str] = input,
        read_secret: Callable[[str], str] = getpass.getpass,
        out: TextIO | None = None,
        texts: Texts = CHINESE,
    ) -> None:
        self._t = texts
        self._read_line = read_line
        self._read_secret = read_secret
        self._out = out or sys.stdout
        # one prompt at a time: two jobs must never fight over the terminal
        self._lock = asyncio.Lock()

    def _print(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    async def confirm(self, explanation: JobExplanation) -> bool:
        async with self._lock:
            self._print(f"\n== {explanation.title} ==")
            for line in explanation.details:
                self._print(f"   {line}")
            try:
                answer = await asyncio.to_thread(self._read_line, self._t("prompt_confirm"))
            except EOFError:
                return False
            return answer.strip().lower() in YES

    async def ask_pin(self, request: PinRequest) -> str | None:
        async with self._lock:
            if request.warning:
                self._print(f"!! {request.warning}")
            try:
                if request.kind is PinKind.USER:
                    return await asyncio.to_thread(
                        self._read_secret, self._t("prompt_pin", name=request.key_label or request.key_serial)
                    )
                question = (
                    self._t("prompt_new_pin_optional", pin=RESET_PIN)
                    if request.optional
                    else self._t("prompt_new_pin")
                )
                first = await asyncio.to_thread(self._read_secret, question)
                if not first and request.optional:
                    return None
                second = await asyncio.to_thread(self._read_secret, self._t("prompt_new_pin_again"))
            except (EOFError, KeyboardInterrupt) as exc:
                raise PinEntryCancelled("PIN entry was cancelled") from exc
            if first != second:
                raise PinEntryCancelled("the two new PINs were different")
            return first

    async def notify(self, text: str) -> None:
        self._print(text)
