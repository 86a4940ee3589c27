"""The channel commands against the fake servers: menu publishing, webhook registration and
the health report (token valid, webhook set, pending updates)."""

from __future__ import annotations

from pydantic import SecretStr

from bot.channels.cli_channels import channels_health, telegram_webhook, wechat_menu
from bot.channels.telegram.fake_server import FakeTelegram
from bot.channels.wechat.fake_server import FakeWeChat
from tests.channels.conftest import telegram_settings, wechat_settings


async def test_health_reports_each_channel_against_the_fakes(
    fake_wechat: tuple[FakeWeChat, str], fake_telegram: tuple[FakeTelegram, str], db_url: str
) -> None:
    wx_fake, wx_base = fake_wechat
    tg_fake, tg_base = fake_telegram
    wx = wechat_settings(wx_base)
    tg = telegram_settings(tg_base)
    lines: list[str] = []
    assert await channels_health(wx, tg, db_url, out=lines.append) == 1  # webhook not set yet
    assert "wechat access token: valid" in lines
    assert "telegram webhook: (none) [NOT SET]" in lines

    assert await telegram_webhook(tg, out=lines.append) == 0
    assert await wechat_menu(wx, db_url, out=lines.append) == 0
    tg_fake.pending.append(tg_fake.text_update(1, "hi"))
    lines.clear()
    assert await channels_health(wx, tg, db_url, out=lines.append) == 0
    assert "wechat menu: 3 top-level item(s)" in lines
    assert "telegram token: valid (@sealbot_test_bot)" in lines
    assert "telegram webhook: https://bot.example.com/telegram/hook-path [set]" in lines
    assert "telegram pending updates: 1" in lines
    assert wx_fake.menu is not None


async def test_health_reports_bad_credentials(
    fake_wechat: tuple[FakeWeChat, str], fake_telegram: tuple[FakeTelegram, str], db_url: str
) -> None:
    _, wx_base = fake_wechat
    _, tg_base = fake_telegram
    lines: list[str] = []
    wx = wechat_settings(wx_base, secret=SecretStr("wrong"))
    tg = telegram_settings(tg_base, token=SecretStr("1:wrong"))
    assert await channels_health(wx, tg, db_url, out=lines.append) == 1
    assert "wechat access token: INVALID" in lines
    assert "telegram token: INVALID" in lines
