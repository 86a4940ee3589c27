"""Real SMS gateways behind the platform's SMS port (``sms.SmsProvider``), chosen by settings.

``PLATFORM_SMS_PROVIDER``: ``console`` (embedded default, nothing leaves the machine),
``tencent`` (Tencent Cloud SMS, ``tencentcloud-sdk-python-sms``) or ``aliyun`` (Alibaba Cloud
SMS, ``alibabacloud-dysmsapi20170525``). Both SDKs are blocking; their calls run in a worker
thread. Each adapter maps the gateway's answer onto the platform's error tree, and the shared
``with_retries`` retries what the gateway calls transient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seal_platform.settings import PlatformSettings
    from seal_platform.sms import SmsProvider


def build_sms_provider(settings: PlatformSettings) -> SmsProvider:
    if settings.sms_provider == "tencent":
        from seal_platform.sms_providers.tencent import TencentSmsProvider

        return TencentSmsProvider.from_settings(settings)
    if settings.sms_provider == "aliyun":
        from seal_platform.sms_providers.aliyun import AliyunSmsProvider

        return AliyunSmsProvider.from_settings(settings)
    from seal_platform.sms import ConsoleSmsProvider

    return ConsoleSmsProvider()
