"""Alibaba Cloud SMS (短信服务 SendSms, API 2017-05-25) through ``alibabacloud-dysmsapi20170525``.

The SDK signs requests ACS3-HMAC-SHA256 (``Authorization`` header). A template has one variable,
``${code}``. Error codes: https://help.aliyun.com/zh/sms/developer-reference/api-error-codes
"""

from __future__ import annotations

import asyncio
import json

from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ServerException, ThrottlingException
from alibabacloud_tea_openapi.models import Config
from darabonba.runtime import RuntimeOptions

from seal_platform.settings import PlatformSettings
from seal_platform.sms import SmsMessage, SmsPurpose
from seal_platform.sms_providers.common import (
    CodeTable,
    GatewayAccount,
    GatewayAnswer,
    Outcome,
    with_retries,
)

DEFAULT_ENDPOINT = "dysmsapi.aliyuncs.com"
DEFAULT_REGION = "cn-hangzhou"

CODES = CodeTable(
    rate_limited=("isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL"),
    number_blocked=(
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.MOBILE_COUNT_OVER_LIMIT",
    ),
    template_not_approved=(
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
    ),
    transient=("isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "Throttling", "ServiceUnavailable", "InternalError"),
)


class AliyunSmsProvider(GatewayAccount):
    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> AliyunSmsProvider:
        return cls.of(settings, region=DEFAULT_REGION, endpoint=DEFAULT_ENDPOINT)

    def _client(self) -> Client:
        config = Config(
            access_key_id=self.key_id,
            access_key_secret=self.key_secret,
            endpoint=self.endpoint,
            region_id=self.region,
            protocol=self.scheme,
        )
        return Client(config)

    async def send(self, message: SmsMessage) -> None:
        purpose = SmsPurpose(message.params["purpose"])
        request = models.SendSmsRequest(
            phone_numbers=message.phone,
            sign_name=self.sign_name,
            template_code=self.templates[purpose],
            template_param=json.dumps({"code": message.params["code"]}),
        )

        async def once() -> None:
            await asyncio.to_thread(self._send_blocking, request)

        await with_retries("aliyun", message.phone, once, self.policy, self.sleep)

    def _send_blocking(self, request: models.SendSmsRequest) -> None:
        timeout_ms = int(self.timeout_seconds * 1000)
        # The SDK's own retries are off: ``with_retries`` decides, on the gateway's codes.
        runtime = RuntimeOptions(autoretry=False, connect_timeout=timeout_ms, read_timeout=timeout_ms)
        try:
            response = self._client().send_sms_with_options(request, runtime)
        except ThrottlingException as exc:
            raise GatewayAnswer(Outcome.TRANSIENT, exc.code or "Throttling", exc.retry_after) from exc
        except ServerException as exc:
            raise GatewayAnswer(Outcome.TRANSIENT, exc.code or "ServerError") from exc
        except AlibabaCloudException as exc:
            code = exc.code or "ClientError"
            raise GatewayAnswer(CODES.classify(code), code) from exc
        except Exception as exc:  # transport errors (timeouts, refused connections), bad JSON
            raise GatewayAnswer(Outcome.TRANSIENT, type(exc).__name__) from exc
        body = response.body
        code = (body.code if body is not None else None) or "EmptyBody"
        if code != "OK":
            raise GatewayAnswer(CODES.classify(code), code)
