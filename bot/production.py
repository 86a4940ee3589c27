"""The production checklist that ``sealbot check-production`` prints (docs/operations.md).

It evaluates the same rules start-up enforces, the bot's and the embedded platform's, as if
``SEALBOT_PRODUCTION`` were true, and lists every one rather than stopping at the first.
"""

from __future__ import annotations

from bot.errors import ConfigError
from bot.settings import Settings


def production_checklist(settings: Settings) -> list[str]:
    from seal_platform.settings import PlatformSettings

    as_production = settings.model_copy(update={"production": True})
    lines: list[str] = []
    try:
        as_production.check()
    except ConfigError as exc:
        lines.append(f"FAIL {exc}")
    if settings.platform_mode == "embedded":
        platform = PlatformSettings(
            service_key=settings.platform_service_key,
            public_base_url=settings.public_base_url + "/platform",
            production=True,
        )
        # In the embedded setup these two platform settings are the bot's, under its names.
        renamed = {
            "PLATFORM_SERVICE_KEY:": "SEALBOT_PLATFORM_SERVICE_KEY:",
            "PLATFORM_PUBLIC_BASE_URL:": "SEALBOT_PUBLIC_BASE_URL:",
        }
        for problem in platform.production_problems():
            name = problem.split(" ", 1)[0]
            line = "FAIL " + renamed.get(name, name) + problem[len(name) :]
            if line not in lines:
                lines.append(line)
        summary = (
            f"payments: {platform.payment_provider}; SMS: {platform.sms_provider}; "
            f"invoices: {platform.effective_invoice_provider}; "
            f"e-mail: {'SMTP ' + platform.smtp_host if platform.smtp_host else 'off'}"
        )
        lines.append(f"INFO {summary}")
    else:
        lines.append("INFO the platform runs as a separate service: run this check on its host")
    if not settings.admin_port:
        lines.append("INFO SEALBOT_ADMIN_PORT is 0: /metrics and the API docs are not served in production")
    if not any(line.startswith("FAIL") for line in lines):
        lines.insert(0, "OK   production mode would start with these settings")
    return lines
