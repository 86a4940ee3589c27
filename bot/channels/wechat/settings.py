"""WeChat official account settings, from the environment with the prefix ``WECHAT_``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError


class WeChatSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WECHAT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    enabled: bool = False
    appid: str = ""
    secret: SecretStr = SecretStr("")
    # 令牌 (Token) from 基本配置 -> 服务器配置: signs every callback.
    token: SecretStr = SecretStr("")
    # 消息加解密密钥 (EncodingAESKey, 43 characters): set it to accept safe-mode (安全模式)
    # messages and to answer them encrypted; plain messages are accepted too (兼容模式).
    encoding_aes_key: SecretStr = SecretStr("")
    # Point wechatpy and the token client at another API server (the fake one in tests).
    api_base_url: str = "https://api.weixin.qq.com/cgi-bin/"
    # The public base URL of this service: file links in chats point at it.
    public_url: str = ""
    timestamp_window: int = Field(default=300, ge=30)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_media_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # WeChat waits 5 s for a passive reply; the engine's replies are held this long for it and
    # the webhook waits at most ``passive_budget`` before answering "success" instead.
    passive_hold: float = Field(default=5.0, gt=0)
    passive_budget: float = Field(default=4.0, gt=0)
    # customer-service (客服) quota: messages per user interaction, and how long it lasts
    cs_messages_per_message: int = Field(default=5, ge=1)
    cs_messages_per_event: int = Field(default=3, ge=1)
    cs_window_hours: int = Field(default=48, ge=1)
    cs_event_window_seconds: int = Field(default=60, ge=1)
    # proactive messages outside the window: a one-time subscription (一次性订阅) template the
    # user accepted, else a template message (verified service accounts) with one text field
    subscribe_template_id: str = ""
    subscribe_scene: int = Field(default=1000, ge=0, le=10000)
    status_template_id: str = ""
    status_template_field: str = "content"
    # The custom menu: a JSON file in WeChat's menu format (see docs/channels.md)
    menu_file: Path | None = None
    file_link_ttl_hours: int = Field(default=72, ge=1)

    @field_validator("api_base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def safe_mode(self) -> bool:
        return bool(self.encoding_aes_key.get_secret_value())

    def check(self) -> None:
        """What the enabled channel cannot work without, as one ``ConfigError`` naming it."""
        if not self.appid or not self.token.get_secret_value():
            raise ConfigError("WECHAT_APPID and WECHAT_TOKEN: required when the WeChat channel is enabled")

    def menu(self) -> dict[str, Any]:
        """The menu to publish; a file that cannot be read is a ``ConfigError`` naming it."""
        if self.menu_file is None:
            return DEFAULT_MENU
        try:
            with self.menu_file.open("rb") as fh:
                loaded: Any = json.load(fh)
        except OSError as exc:
            raise ConfigError(f"WECHAT_MENU_FILE: cannot read {self.menu_file}: {exc.strerror}") from exc
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ConfigError(f"WECHAT_MENU_FILE: {self.menu_file} is not JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f'WECHAT_MENU_FILE: {self.menu_file} must hold a JSON object with "button"')
        return loaded


# Keys of click items are start parameters (bot.channels.deep_link): a flow name or a command.
DEFAULT_MENU: dict[str, Any] = {
    "button": [
        {
            "name": "办理业务",
            "sub_button": [
                {"type": "click", "name": "全部业务", "key": "menu"},
                {"type": "click", "name": "企业印章申请", "key": "apply_enterprise"},
                {"type": "click", "name": "法人章申请", "key": "apply_personal"},
                {"type": "click", "name": "续期", "key": "renew"},
            ],
        },
        {
            "name": "我的",
            "sub_button": [
                {"type": "click", "name": "订单进度", "key": "my_orders"},
                {"type": "click", "name": "发票", "key": "invoice"},
                {"type": "click", "name": "登录", "key": "login"},
            ],
        },
        {
            "name": "帮助",
            "sub_button": [
                {"type": "click", "name": "使用帮助", "key": "help"},
                {"type": "click", "name": "人工客服", "key": "human"},
            ],
        },
    ]
}
