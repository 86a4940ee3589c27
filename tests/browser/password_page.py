"""Browser helper: open the secure password page from the chat's link and use it."""

from __future__ import annotations

from typing import Any


def use_password_page(chat: Any, password: str, *, confirm: bool, done_text: str) -> None:
    """Click the last password-page link in the chat, fill the form in the new tab, submit."""
    link = chat.locator("a[href*='/secure/password']").last
    link.wait_for(timeout=15_000)
    with chat.context.expect_page() as opened:
        link.click()
    page = opened.value
    page.wait_for_load_state()
    page.fill("#password", password)
    if confirm:
        page.fill("#confirm", password)
    page.locator("button[type=submit]").click()
    page.locator(".card", has_text=done_text).wait_for(timeout=15_000)
    page.close()
