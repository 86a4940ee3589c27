"""Tencent Cloud SMS (短信 SendSms, API 2021-01-11) through ``tencentcloud-sdk-python-sms``.

Requests are signed TC3-HMAC-SHA256 by the SDK. A template has two variables: ``{1}`` the code,
``{2}`` its validity in minutes. Error codes:
https://cloud.tencent.com/document/api/382/55981 (SendSms) and
https://cloud.tencent.com/document/product/382/59177 (error codes).
"""

from __future__ import annotations

import asyncio

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from seal_platform.settings import PlatformSettings
from seal_platform.sms import SmsMessage, SmsPurpose
from seal_platform.sms_providers.common import (
    CodeTable,
    GatewayAccount,
    GatewayAnswer,
    Outcome,
    with_retries,
)

DEFAULT_ENDPOINT = "sms.tencentcloudapi.com"
DEFAULT_REGION = "ap-guangzhou"

CODES = CodeTable(
    rate_limited=("LimitExceeded.PhoneNumber", "LimitExceeded.DeliveryFrequencyLimit"),
    number_blocked=(
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberOnBlacklist",
        "InvalidParameterValue.IncorrectPhoneNumber",
        "UnsupportedOperation.UnsupportedRegion",
    ),
    template_not_approved=(
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
        "FailedOperation.MissingSignature",
        "FailedOperation.MissingTemplate",
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.TemplateParameterLengthLimit",
    ),
    transient=("InternalError", "RequestLimitExceeded", "ClientNetworkError", "ServerNetworkError"),
)


class TencentSmsProvider(GatewayAccount):
    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> TencentSmsProvider:
        return cls.of(settings, region=DEFAULT_REGION, endpoint=DEFAULT_ENDPOINT)

    def _client(self) -> sms_client.SmsClient:
        http = HttpProfile(
            protocol=self.scheme, endpoint=self.endpoint, reqTimeout=max(1, int(self.timeout_seconds))
        )
        return sms_client.SmsClient(
            credential.Credential(self.key_id, self.key_secret),
            self.region,
            ClientProfile(httpProfile=http),
        )

    async def send(self, message: SmsMessage) -> None:
        purpose = SmsPurpose(message.params["purpose"])
        request = models.SendSmsRequest()
        request.PhoneNumberSet = ["+86" + message.phone]
        request.SmsSdkAppId = self.app_id
        request.SignName = self.sign_name
        request.TemplateId = self.templates[purpose]
        request.TemplateParamSet = [message.params["code"], message.params.get("minutes", "5")]

        async def once() -> None:
            await asyncio.to_thread(self._send_blocking, request)

        await with_retries("tencent", message.phone, once, self.policy, self.sleep)

    def _send_blocking(self, request: models.SendSmsRequest) -> None:
        try:
            response = self._client().SendSms(request)
        except TencentCloudSDKException as exc:
            raise GatewayAnswer(CODES.classify(exc.get_code() or ""), exc.get_code() or "unknown") from exc
        except Exception as exc:  # the SDK lets some transport and parsing errors through
            raise GatewayAnswer(Outcome.TRANSIENT, type(exc).__name__) from exc
        statuses = response.SendStatusSet or []
        if not statuses:
            raise GatewayAnswer(Outcome.FAILED, "EmptySendStatusSet")
        code = statuses[0].Code or ""
        if code != "Ok":
            raise GatewayAnswer(CODES.classify(code), code)
