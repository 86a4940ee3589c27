"""SMS and e-mail reminders through the platform: it owns the account's phone and address, the
SMS providers and the SMTP server.

For SMS the platform writes the text from its own records (company, seal, expiry date, how to
renew) and sends it to the account's own phone; for e-mail the bot writes the words in the
user's language and the platform mails them to the account's own address. These adapters only
ask, and turn the platform's refusals into the reminder job's terms: a refusal that stays (no
such seal, the seal no longer expires, no address, an address refused) is final for this
channel, a rate limit waits, a provider or SMTP outage is retried.
"""

from __future__ import annotations

from bot.errors import DeliveryFailed
from platform_client.errors import PlatformClientError, PlatformUnavailable, RateLimited
from platform_client.reminders import RemindersAPI


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


# Platform refusals of a reminder e-mail, in the words the delivery record has always used.
_MAIL_REFUSALS = {
    "mail_not_configured": "no e-mail sender configured",
    "no_email": "the account has no e-mail address",
}


class PlatformReminderMail:
    def __init__(self, platform: RemindersAPI) -> None:
        self.platform = platform

    async def send(self, account_id: str, seal_id: str, subject: str, text: str) -> str:
        try:
            receipt = await self.platform.send_reminder_email(account_id, seal_id, subject, text)
        except PlatformUnavailable as exc:
            raise DeliveryFailed(f"e-mail: platform unavailable ({exc.code})") from exc
        except PlatformClientError as exc:
            if exc.status >= 500:
                # The SMTP server was unreachable or said "try later" (the platform answers 502).
                raise DeliveryFailed(f"e-mail failed upstream ({exc.code}): {exc.message}") from exc
            reason = _MAIL_REFUSALS.get(exc.code, f"e-mail refused ({exc.code}): {exc.message}")
            raise DeliveryFailed(reason, retryable=False) from exc
        return receipt.message_id
