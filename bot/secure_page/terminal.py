"""The password page in the terminal chat: the password is read without echo (``getpass``)
and goes through the same rules as the web page; it never becomes a chat message."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
from collections.abc import Callable, Sequence
from typing import TextIO

from bot.engine.messages import OutboundMessage, ReplyKind
from bot.secure_page.service import PasswordPages

MAX_TRIES = 5

SecretReader = Callable[[str], str]


class TerminalPasswordPage:
    """Answers the chat's password-page links in the terminal itself."""

    def __init__(
        self, pages: PasswordPages, user: str, out: TextIO, read_secret: SecretReader | None = None
    ) -> None:
        self.pages = pages
        self.out = out
        self.read_secret = read_secret or getpass.getpass
        # One "browser" per terminal user: the link is claimed by this terminal.
        self.browser = hashlib.sha256(f"terminal:{user}".encode()).hexdigest()[:32]

    async def after_replies(self, messages: Sequence[OutboundMessage]) -> None:
        for message in messages:
            reply = message.reply
            if reply.kind is not ReplyKind.LINK or not reply.url:
                continue
            token = self.pages.links.token_of_url(reply.url)
            if token is not None:
                await self.fill(token)

    async def fill(self, token: str) -> None:
        view = await self.pages.open(token, self.browser)
        catalog = self.pages.engine.catalog
        for _ in range(MAX_TRIES):
            if view.status != "form":
                break
            if view.error:
                self.out.write(view.error + "\n")
            password = await asyncio.to_thread(
                self.read_secret, catalog.get(view.locale, "secure_page.terminal_prompt")
            )
            confirm = None
            if view.purpose in {"register", "reset"}:
                confirm = await asyncio.to_thread(
                    self.read_secret, catalog.get(view.locale, "secure_page.terminal_confirm")
                )
            view = await self.pages.submit(
                token, self.browser, csrf=view.csrf, password=password, confirm=confirm, client="terminal"
            )
        key = f"done_{view.purpose}" if view.status == "done" else f"refused_{view.reason or 'invalid'}"
        if view.status != "form":
            self.out.write(catalog.get(view.locale, f"secure_page.{key}") + "\n")
        self.out.flush()
