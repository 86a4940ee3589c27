"""E-mail reminders over SMTP (aiosmtplib), the last step of a reminder policy.

``SmtpSettings`` come from the environment (prefix ``REMINDER_SMTP_``); with no host, e-mail is
not part of the policy (the job records "no e-mail sender configured" and goes on). The address
is the one the account gave the platform (``PlatformContacts``). SMTP refusals of the recipient
are final for this channel; a connection or server failure is retried with backoff.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import DeliveryFailed
from scheduler.sms import PlatformContacts


class SmtpSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REMINDER_SMTP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    # "starttls" (port 587), "tls" (implicit TLS, port 465) or "none" (a local relay only).
    security: str = Field(default="starttls", pattern="^(starttls|tls|none)$")
    sender: str = "noreply@example.invalid"
    timeout: float = Field(default=30.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.host)


class SmtpMailer:
    def __init__(self, settings: SmtpSettings, contacts: PlatformContacts) -> None:
        self.settings = settings
        self.contacts = contacts

    async def address(self, account_id: str) -> str | None:
        return await self.contacts.email(account_id)

    async def send(self, to: str, subject: str, text: str) -> str:
        settings = self.settings
        message = EmailMessage()
        message["From"] = settings.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message_id = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
        message["Message-ID"] = message_id
        message.set_content(text, charset="utf-8")
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.host,
                port=settings.port,
                username=settings.username or None,
                password=settings.password.get_secret_value() or None,
                use_tls=settings.security == "tls",
                start_tls=settings.security == "starttls",
                timeout=settings.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"e-mail address refused: {exc.recipients!r}", retryable=False) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx: the server refuses for good; 4xx: it may accept later.
            raise DeliveryFailed(f"smtp {exc.code}: {exc.message}", retryable=exc.code < 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"smtp unavailable: {exc!r}") from exc
        return message_id
