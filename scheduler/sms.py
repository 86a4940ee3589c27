"""SMS reminders through the platform: it owns the account's phone and the SMS providers.

The platform writes the text from its own records (company, seal, expiry date, how to renew)
and sends it to the account's own phone; this adapter only asks, and turns the platform's
refusals into the reminder job's terms: a refusal that stays (no such seal, the seal no longer
expires) is final for this channel, a rate limit waits, a provider outage is retried.
"""

from __future__ import annotations

from bot.errors import DeliveryFailed
from platform_client.errors import PlatformClientError, PlatformUnavailable, RateLimited
from platform_client.reminders import AccountContact, RemindersAPI


class PlatformReminderSms:
    def __init__(self, platform: RemindersAPI) -> None:
        self.platform = platform

    async def send(self, account_id: str, seal_id: str, threshold: int) -> str:
        try:
            receipt = await self.platform.send_reminder_sms(account_id, seal_id, threshold)
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else 3600.0
            raise DeliveryFailed(f"sms rate limited ({exc.code})", retry_after=wait) from exc
        except PlatformUnavailable as exc:
            raise DeliveryFailed(f"sms: platform unavailable ({exc.code})") from exc
        except PlatformClientError as exc:
            if exc.status >= 500:
                # The SMS provider failed upstream (the platform answers 502): try again later.
                raise DeliveryFailed(f"sms provider failed ({exc.code})") from exc
            raise DeliveryFailed(f"sms refused ({exc.code}): {exc.message}", retryable=False) from exc
        return receipt.message_id


class PlatformContacts:
    """The account's contact details, read from the platform when needed (never stored here)."""

    def __init__(self, platform: RemindersAPI) -> None:
        self.platform = platform

    async def get(self, account_id: str) -> AccountContact:
        try:
            return await self.platform.contact(account_id)
        except PlatformClientError as exc:
            raise DeliveryFailed(f"contact unavailable ({exc.code})", retryable=exc.status >= 500) from exc

    async def email(self, account_id: str) -> str | None:
        return (await self.get(account_id)).email
