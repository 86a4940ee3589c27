"""SMS pumping through the web chat: every fresh cookie is a new chat identity, so the platform's
per-address limits are what stop it, and the web chat passes the visitor's address for them.
X-Forwarded-For is believed only from a configured proxy: a visitor who writes the header
themselves still counts as the one address they connect from."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bot.app import create_app
from bot.cli import public_server_config
from tests.fixtures.served import free_port, serve_in_loop, service_settings

CAPTCHA_PROMPT = "为防止滥用，请输入上图中的 4 个字符"
SENT = "验证码已发送"


@contextlib.asynccontextmanager
async def served(tmp_path: Path, trusted_proxies: str = "") -> AsyncIterator[tuple[str, object]]:
    port = free_port()
    settings = service_settings(tmp_path, port, host="127.0.0.1", trusted_proxies=trusted_proxies)
    app = create_app(settings)
    config = public_server_config(app, settings)
    config.log_level = "warning"
    async with serve_in_loop(app, port, config=config) as base:
        yield base, app


async def register_from_a_fresh_cookie(base: str, n: int, forwarded_for: str) -> str:
    """A new browser (no cookie) asks for a registration code; the bot's last answer."""
    headers = {"X-Forwarded-For": forwarded_for}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as web:
        await web.get("/chat")
        for i, text in enumerate(("注册", f"1390000{n:04d}")):
            sent = await web.post("/chat/api/send", json={"client_id": f"pump{n:04d}x{i}", "text": text})
            assert sent.status_code == 200, sent.text
        for _ in range(200):
            got = (await web.get("/chat/api/messages", params={"after": 0, "wait": 0})).json()
            texts = [m["text"] for m in got["messages"]]
            if any(SENT in t or CAPTCHA_PROMPT in t for t in texts):
                return "\n".join(texts)
            await asyncio.sleep(0.05)
    raise AssertionError("no answer to the phone number")


def codes_sent(app: object) -> int:
    return len(app.state.container.platform_services.sms_provider.sent)  # type: ignore[attr-defined]


async def test_fresh_cookies_from_one_address_get_a_captcha_after_three_codes_whatever_they_forward(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as (base, app):
        answers = [
            await register_from_a_fresh_cookie(base, n, forwarded_for=f"198.51.100.{n}") for n in range(6)
        ]
        # the platform's default: a captcha after 3 sends in an hour from one address
        assert codes_sent(app) == 3
        assert all(SENT in a for a in answers[:3])
        assert all(CAPTCHA_PROMPT in a and SENT not in a for a in answers[3:])


async def test_behind_a_configured_proxy_each_visitor_address_is_counted_on_its_own(tmp_path: Path) -> None:
    async with served(tmp_path, trusted_proxies="127.0.0.1") as (base, app):
        # the proxy appends the address it saw; anything a visitor wrote further left is ignored
        answers = [
            await register_from_a_fresh_cookie(base, n, forwarded_for=f"10.9.9.9, 198.51.100.{n % 2}")
            for n in range(6)
        ]
        assert codes_sent(app) == 6
        assert all(SENT in a for a in answers)
        one_more = await register_from_a_fresh_cookie(base, 7, forwarded_for="10.9.9.9, 198.51.100.1")
        assert CAPTCHA_PROMPT in one_more  # the fourth from 198.51.100.1
        assert codes_sent(app) == 6
