"""The bot's exception tree. Outside errors are translated at the adapter (``raise ... from``)."""

from __future__ import annotations


class SealbotError(Exception):
    """Base of every error raised by the bot packages."""


class ConfigError(SealbotError):
    """A setting is missing or wrong; the message names it in one line."""


class StorageError(SealbotError):
    pass


class MediaExpired(StorageError):
    """A file past its own expiry (a data export's download): refused, and deleted."""


class VersionConflict(StorageError):
    """Someone else wrote the conversation since it was read (optimistic check on write)."""


class ChannelError(SealbotError):
    pass


class DeliveryFailed(ChannelError):
    """A channel could not deliver an outbound message.

    ``retryable`` false means retrying cannot help (user blocked the bot, no consent, quota
    outside the window with no fallback): the outbox records it and stops.
    """

    def __init__(self, reason: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class DeliveryParked(ChannelError):
    """The channel kept the message to deliver when the user next writes (WeChat outside its
    customer-service allowance): not sent, not failed. The outbox records it as ``parked``, so
    nothing counts it as sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RequestRejected(ChannelError):
    """An inbound webhook request is refused (bad signature, stale, too large, hostile XML).

    ``status`` is the HTTP status to answer with.
    """

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
