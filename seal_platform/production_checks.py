"""What production mode refuses: every demo part, each named by the setting that turns it off.

The lines are what ``sealbot check-production`` prints and what start-up raises (the first one);
each names the environment variable to change, because that is what the operator acts on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seal_platform.settings import PlatformSettings

_DEV_PREFIX = "embedded-dev"
# The seller tax number of the embedded default; settings take their default from here (this
# module imports nothing of the platform at run time, so settings may import it).
PLACEHOLDER_SELLER_TAX_NUMBER = "91440101MA5CXXXX0X"
# Every purpose an SMS code is sent for (``seal_platform.sms.SmsPurpose``, checked equal by a
# test): a real provider sends each with its own approved template, so each must be configured
# before start-up rather than fail on the first code of that kind.
SMS_TEMPLATE_PURPOSES = (
    "register",
    "login",
    "cancel_seal",
    "reset_password",
    "export_data",
    "delete_account",
)


def production_problems(settings: PlatformSettings) -> list[str]:
    problems: list[str] = []
    for name, value in (
        ("PLATFORM_SERVICE_KEY", settings.service_key.get_secret_value()),
        ("PLATFORM_SECRET_KEY", settings.secret_key.get_secret_value()),
    ):
        if not value or value.startswith(_DEV_PREFIX):
            problems.append(
                f"{name}: must be set to a private value in production (it is missing or the default)"
            )
    if settings.invoice_seller_tax_number == PLACEHOLDER_SELLER_TAX_NUMBER:
        problems.append(
            "PLATFORM_INVOICE_SELLER_TAX_NUMBER: must be set in production (it is the placeholder)"
        )
    if not (settings.invoice_seller_name or settings.operator_company):
        problems.append(
            "PLATFORM_OPERATOR_COMPANY: the company that runs the service (and sells) must be set"
        )
    if not settings.public_base_url.startswith("https://"):
        problems.append("PLATFORM_PUBLIC_BASE_URL: must be an https:// URL in production")
    if settings.payment_provider == "sandbox":
        problems.append(
            "PLATFORM_PAYMENT_PROVIDER: the sandbox pays without money; set wechatpay in production"
        )
    if settings.sms_provider == "console":
        problems.append("PLATFORM_SMS_PROVIDER: the console provider sends no SMS; set tencent or aliyun")
    if settings.dev_pages:
        problems.append("PLATFORM_DEV_PAGES: the dev SMS page must be off in production; set it to false")
    if settings.effective_invoice_provider == "sandbox":
        problems.append(
            "PLATFORM_INVOICE_PROVIDER: the self-drawn sample is no invoice; use manual or nuonuo"
        )
    if settings.production_station == "demo":
        problems.append(
            "PLATFORM_PRODUCTION_STATION: demo simulates the UKey; use remote (or local) in production"
        )
    problems += _provider_settings(settings)
    return problems


def _provider_settings(settings: PlatformSettings) -> list[str]:
    """Settings a chosen provider cannot work without."""
    problems: list[str] = []
    if settings.payment_provider == "wechatpay":
        for name in ("mchid", "appid", "cert_serial_no", "public_key", "public_key_id"):
            if not getattr(settings, f"wechatpay_{name}"):
                problems.append(f"PLATFORM_WECHATPAY_{name.upper()}: required by the wechatpay provider")
        for name in ("private_key", "apiv3_key"):
            if not getattr(settings, f"wechatpay_{name}").get_secret_value():
                problems.append(f"PLATFORM_WECHATPAY_{name.upper()}: required by the wechatpay provider")
    if settings.sms_provider in ("tencent", "aliyun"):
        required = [
            "access_key_id",
            "sign_name",
            *(f"template_{purpose}" for purpose in SMS_TEMPLATE_PURPOSES),
        ]
        if settings.sms_provider == "tencent":
            required.append("tencent_app_id")
        for name in required:
            if not getattr(settings, f"sms_{name}"):
                problems.append(
                    f"PLATFORM_SMS_{name.upper()}: required by the {settings.sms_provider} SMS provider"
                )
        if not settings.sms_access_key_secret.get_secret_value():
            problems.append(
                f"PLATFORM_SMS_ACCESS_KEY_SECRET: required by the {settings.sms_provider} SMS provider"
            )
    if settings.effective_invoice_provider == "nuonuo":
        if not settings.nuonuo_app_key:
            problems.append("PLATFORM_NUONUO_APP_KEY: required by the nuonuo invoice provider")
        for name in ("app_secret", "access_token"):
            if not getattr(settings, f"nuonuo_{name}").get_secret_value():
                problems.append(f"PLATFORM_NUONUO_{name.upper()}: required by the nuonuo invoice provider")
    if settings.smtp_host and not settings.smtp_from:
        problems.append("PLATFORM_SMTP_FROM: required when PLATFORM_SMTP_HOST is set")
    return problems
