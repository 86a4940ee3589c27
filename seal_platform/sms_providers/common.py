"""What both SMS gateways share: template ids per purpose, the outcomes a gateway answer maps
to, and the retry loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Self

from seal_platform.errors import InvalidInput, PlatformError, RateLimited, UpstreamError
from seal_platform.settings import PlatformSettings
from seal_platform.sms import SmsPurpose
from seal_platform.validation import mask_mobile

log = logging.getLogger("seal_platform.sms")


class Outcome(StrEnum):
    """What a gateway's error code means for the platform."""

    RATE_LIMITED = "rate_limited"  # the gateway's own per-number frequency limit
    NUMBER_BLOCKED = "number_blocked"  # invalid, blacklisted or unreachable number
    TEMPLATE_NOT_APPROVED = "template_not_approved"  # sign name / template not (yet) approved
    TRANSIENT = "transient"  # timeout, 5xx, throttling of our account: worth another try
    FAILED = "failed"  # anything else: not retried


class GatewayAnswer(Exception):
    """A gateway refused or failed one send; ``outcome`` says what to do about it."""

    def __init__(self, outcome: Outcome, code: str, retry_after: float | None = None) -> None:
        super().__init__(f"{outcome.value}: {code}")
        self.outcome = outcome
        self.code = code
        self.retry_after = retry_after


class _NoSmsContent(logging.Filter):
    """Drops the SDKs' debug records: they print request bodies and URLs, and so the code."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "urllib3.connectionpool":
            # Alibaba's SDK sends the template parameters (the code) in the query string.
            return "TemplateParam" not in record.getMessage()
        return record.levelno >= logging.WARNING


_QUIET = _NoSmsContent()


def quiet_sdk_logs() -> None:
    """Install the filter on the loggers that would print a code at DEBUG (idempotent)."""
    for name in ("tencentcloud_sdk_common", "darabonba-core", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)


@dataclass(frozen=True)
class CodeTable:
    """A gateway's error codes (by prefix) for each outcome; anything else is ``FAILED``."""

    rate_limited: tuple[str, ...]
    number_blocked: tuple[str, ...]
    template_not_approved: tuple[str, ...]
    transient: tuple[str, ...]

    def classify(self, code: str) -> Outcome:
        for prefixes, outcome in (
            (self.rate_limited, Outcome.RATE_LIMITED),
            (self.number_blocked, Outcome.NUMBER_BLOCKED),
            (self.template_not_approved, Outcome.TEMPLATE_NOT_APPROVED),
            (self.transient, Outcome.TRANSIENT),
        ):
            if code.startswith(prefixes):
                return outcome
        return Outcome.FAILED


def templates_from(settings: PlatformSettings) -> dict[SmsPurpose, str]:
    """One template per purpose (``PLATFORM_SMS_TEMPLATE_<PURPOSE>``), every purpose included:
    production checks refuse to start while one is empty."""
    return {purpose: str(getattr(settings, f"sms_template_{purpose.value}")) for purpose in SmsPurpose}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    # Waits before the second, third ... attempt (a gateway's own retry-after wins if longer).
    backoff: tuple[float, ...] = (0.5, 2.0)
    max_wait: float = 10.0


def user_error(answer: GatewayAnswer) -> PlatformError:
    """The refusal the user sees; the gateway's code stays in the details for the operator."""
    if answer.outcome is Outcome.RATE_LIMITED:
        return RateLimited(
            "短信发送过于频繁，请稍后再试",
            code="sms_provider_rate_limited",
            retry_after=60,
            provider_code=answer.code,
        )
    if answer.outcome is Outcome.NUMBER_BLOCKED:
        return InvalidInput(
            "该手机号暂时无法接收短信，请确认号码或换一个号码",
            code="sms_number_blocked",
            provider_code=answer.code,
        )
    if answer.outcome is Outcome.TEMPLATE_NOT_APPROVED:
        return UpstreamError(
            "短信服务暂时无法发送验证码，请稍后再试或联系客服",
            code="sms_template_not_approved",
            provider_code=answer.code,
        )
    return UpstreamError("短信发送失败，请稍后再试", code="sms_send_failed", provider_code=answer.code)


async def with_retries(
    provider: str,
    phone: str,
    send_once: Callable[[], Awaitable[None]],
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Send, retrying transient failures; raise the user-facing error of the last answer.

    Only the masked number and the gateway's code are logged: never the text or the code.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            await send_once()
            return
        except GatewayAnswer as answer:
            log.warning(
                "%s SMS to %s failed (attempt %d/%d): %s",
                provider,
                mask_mobile(phone),
                attempt,
                policy.attempts,
                answer.code,
            )
            if answer.outcome is not Outcome.TRANSIENT or attempt == policy.attempts:
                raise user_error(answer) from answer
            backoff = policy.backoff[min(attempt - 1, len(policy.backoff) - 1)] if policy.backoff else 0.0
            await sleep(min(max(backoff, answer.retry_after or 0.0), policy.max_wait))


@dataclass
class GatewayAccount:
    """What both SDK adapters are built from: the account, the sign name, the templates, and
    where and how patiently to reach the gateway."""

    key_id: str
    key_secret: str
    sign_name: str
    templates: dict[SmsPurpose, str]
    region: str
    endpoint: str
    scheme: str = "https"
    timeout_seconds: float = 10.0
    # Tencent only: the SmsSdkAppId.
    app_id: str = ""
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __post_init__(self) -> None:
        quiet_sdk_logs()

    @classmethod
    def of(cls, settings: PlatformSettings, *, region: str, endpoint: str) -> Self:
        return cls(
            key_id=settings.sms_access_key_id,
            key_secret=settings.sms_access_key_secret.get_secret_value(),
            sign_name=settings.sms_sign_name,
            templates=templates_from(settings),
            region=settings.sms_region or region,
            endpoint=settings.sms_endpoint or endpoint,
            scheme=settings.sms_endpoint_scheme,
            timeout_seconds=settings.sms_timeout_seconds,
            app_id=settings.sms_tencent_app_id,
        )
