"""The operator's identity (``GET /v1/operator``): service name, company, hotline, hours."""

from __future__ import annotations

from platform_client.base import SubAPI
from platform_client.models import PlatformModel


class Operator(PlatformModel):
    service_name: str
    company: str = ""
    hotline: str = ""
    support_hours: str = ""


class OperatorAPI(SubAPI):
    async def get(self) -> Operator:
        return self._parse(Operator, await self._request("GET", "/v1/operator"))
