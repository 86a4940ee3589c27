"""The WeChat adapter's one error base: callers catch ``WeChatError`` for anything WeChat (or
reaching it) refused, whether an API call or the access token behind it."""

from __future__ import annotations

from bot.errors import ChannelError


class WeChatError(ChannelError):
    """WeChat refused a call, or could not be reached."""
