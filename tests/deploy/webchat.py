"""Test helper: one web-chat user talking to a served ``sealbot serve`` over HTTP, as the chat
page's script does (``/chat/api/send``, ``/upload``, ``/messages``), plus the two pages a person
opens beside the chat: the platform's dev SMS page and the secure password page.

Shared by the deployment tests (``test_cluster.py``, ``test_remote_mode_end_to_end.py``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from bot.channels.webchat.sessions import COOKIE

PASSWORD_LINK = re.compile(r"/secure/password\?t=[A-Za-z0-9_.%-]+")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SMS_ROW = re.compile(r"<tr><td>([^<]+)</td><td>[^<]*</td><td class=code>(\d{6})</td>")


def shown(message: dict[str, Any]) -> str:
    """What the page shows of one message: its text, its link and its buttons."""
    labels = " ".join(option["label"] for option in message["options"])
    return f"{message['text']} {message['url'] or ''} {labels}"


class Browser:
    """One web-chat user behind ``base`` (a worker or the proxy in front of workers)."""

    def __init__(self, base: str) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=20)
        self.count = 0
        self.seen: list[dict[str, Any]] = []

    async def open(self) -> None:
        """Load the chat page, which starts the web session (its cookie)."""
        page = await self.http.get("/chat")
        assert page.status_code == 200, page.text

    async def aclose(self) -> None:
        await self.http.aclose()

    def _client_id(self) -> str:
        self.count += 1
        return f"client{self.count:04d}"

    async def _post(self, body: dict[str, str]) -> list[dict[str, Any]]:
        mark = len(self.seen)
        sent = await self.http.post("/chat/api/send", json={"client_id": self._client_id(), **body})
        assert sent.status_code == 200, sent.text
        # The answer names the outbox ids of the replies; they show once the outbox delivered them.
        expected = set(sent.json()["replies"])
        for _ in range(400):
            await self.fetch()
            if expected <= {m["id"] for m in self.seen[mark:]}:
                return self.seen[mark:]
            await asyncio.sleep(0.05)
        raise AssertionError(f"replies {expected} never shown: {[shown(m) for m in self.seen[mark:]]}")

    async def log_out(self) -> None:
        """Type the logout command: the browser is given a new, empty chat (a new cookie), so
        the answer, written to the old chat, is not waited for."""
        before = self.http.cookies.get(COOKIE)
        sent = await self.http.post(
            "/chat/api/send", json={"client_id": self._client_id(), "text": "退出登录"}
        )
        assert sent.status_code == 200, sent.text
        assert self.http.cookies.get(COOKIE) not in (None, before)

    async def fetch(self) -> None:
        """New messages since the last seen one (the live view: the owner's answers in full)."""
        after = self.seen[-1]["id"] if self.seen else 0
        got = await self.http.get("/chat/api/messages", params={"after": after, "wait": 0})
        assert got.status_code == 200, got.text
        self.seen.extend(got.json()["messages"])

    async def say(self, text: str) -> str:
        """Type ``text``; returns what the chat answered, joined."""
        return "\n".join(shown(m) for m in await self._post({"text": text}))

    async def tap(self, label: str) -> str:
        """Press the newest button whose label contains ``label``."""
        for message in reversed(self.seen):
            for option in message["options"]:
                if label in option["label"]:
                    return "\n".join(shown(m) for m in await self._post({"token": option["token"]}))
        raise AssertionError(f"no button {label!r} in {[shown(m) for m in self.seen[-5:]]}")

    async def upload(self, data: bytes, filename: str, expect: str) -> str:
        """Send a file as the page's paper-clip does. The upload's answer does not name its
        replies, so ``expect`` must be in the last of them (the next step's question or buttons);
        returns everything said since the upload."""
        mark = len(self.seen)
        uploaded = await self.http.post(
            "/chat/api/upload", data={"client_id": self._client_id()}, files={"file": (filename, data)}
        )
        assert uploaded.status_code == 200, uploaded.text
        return await self.wait_for(expect, since=mark)

    async def wait_for(self, expect: str, *, since: int = 0, within: float = 20.0) -> str:
        """Wait until a message after index ``since`` shows ``expect``; returns those messages."""
        for _ in range(int(within / 0.05)):
            text = "\n".join(await self.texts_since(since))
            if expect in text:
                return text
            await asyncio.sleep(0.05)
        raise AssertionError(f"{expect!r} never came: {[shown(m) for m in self.seen[since:]]}")

    async def texts_since(self, since: int) -> list[str]:
        await self.fetch()
        return [shown(m) for m in self.seen[since:]]

    def last_link(self, part: str) -> str:
        for message in reversed(self.seen):
            if message["url"] and part in message["url"]:
                return str(message["url"])
        raise AssertionError(f"no link containing {part!r}")

    async def use_password_page(self, password: str, expect: str) -> str:
        """Open the secure page the chat linked to last, submit the form with its CSRF token as
        a browser would; returns the page's answer after checking it says ``expect``."""
        found = PASSWORD_LINK.search(self.last_link("/secure/password"))
        assert found is not None
        form = await self.http.get(found.group(0))
        assert form.status_code == 200, form.text
        csrf = CSRF.search(form.text)
        assert csrf is not None, form.text
        fields = {"csrf": csrf.group(1), "password": password}
        if 'name="confirm"' in form.text:  # setting a password asks twice; logging in once
            fields["confirm"] = password
        done = await self.http.post(found.group(0), data=fields)
        assert expect in done.text, done.text
        return done.text


async def sms_code(web: httpx.AsyncClient, phone: str) -> str:
    """The newest code sent to ``phone``, read from the platform's dev SMS page."""
    page = await web.get("/platform/dev/sms")
    masked = phone[:3] + "****" + phone[-4:]
    for number, code in SMS_ROW.findall(page.text):
        if number == masked:
            return str(code)
    raise AssertionError(f"no code for {masked} on the SMS page")
