"""Test helper: use the secure password page the chat just linked to, as a browser would.

It goes through ``PasswordPages`` (the rules behind the HTTP page and the terminal): open the
link, submit the form with its CSRF token, then deliver what the chat says next.
"""

from __future__ import annotations

from bot.engine.messages import ReplyKind
from bot.secure_page.links import PAGE_PATH
from bot.secure_page.service import PageView, PasswordPages
from bot.testing import ChatHarness


def last_page_link(chat: ChatHarness, user: str = "u1") -> str:
    for message in reversed(chat.sender.sent):
        reply = message.reply
        if message.key.user_id == user and reply.kind is ReplyKind.LINK and PAGE_PATH in (reply.url or ""):
            assert reply.url is not None
            return reply.url
    raise AssertionError(f"no password page link was sent to {user}")


def token_of(pages: PasswordPages, url: str) -> str:
    token = pages.links.token_of_url(url)
    assert token is not None, url
    return token


async def use_page(
    pages: PasswordPages,
    chat: ChatHarness,
    password: str,
    *,
    user: str = "u1",
    confirm: str | None = None,
    browser: str = "browser-of-u1",
    url: str | None = None,
) -> tuple[PageView, list[str]]:
    """Submit ``password`` on the last linked page; returns the page's answer and the chat's."""
    token = token_of(pages, url or last_page_link(chat, user))
    opened = await pages.open(token, browser)
    if opened.status != "form":
        return opened, []
    before = len(chat.sender.sent)
    view = await pages.submit(
        token,
        browser,
        csrf=opened.csrf,
        password=password,
        confirm=password if confirm is None and opened.purpose != "login" else confirm,
        client="127.0.0.1",
    )
    return view, [reply.text for reply in await chat.pushed(before, user)]
