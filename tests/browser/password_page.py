"""Browser helper: open the secure password page from the chat's link and use it."""

from __future__ import annotations

from typing import Any

# The chat says the page's introduction and then sends the link as a message of its own, so the
# two can reach the browser in different polls. The link to use is the first one after the
# latest introduction: "the last link on the page" may still be an earlier, used one.
_LATEST_INTRO = (
    "(//div[contains(@class,'msg')][.//div[contains(@class,'bubble')]"
    "[contains(., '只能使用一次') or contains(., 'works once')]])[last()]"
)
_LINK_AFTER_LATEST_INTRO = (
    f"xpath=({_LATEST_INTRO}/following-sibling::div//a[contains(@href,'/secure/password')])[1]"
)


def use_password_page(chat: Any, password: str, *, confirm: bool, done_text: str) -> None:
    """Click the link the chat's latest page introduction sent, fill the form in the new tab."""
    link = chat.locator(_LINK_AFTER_LATEST_INTRO)
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
