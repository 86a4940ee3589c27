"""Early checks of answers with the platform's own rules (``POST /v1/checks``)."""

from __future__ import annotations

from typing import Literal

from platform_client.base import SubAPI

CheckKind = Literal["resident_id", "credit_code", "mobile", "person_name", "password", "waybill"]


class ChecksAPI(SubAPI):
    async def check(self, kind: CheckKind, value: str) -> str:
        """The normalised value, or ``InvalidInput`` whose ``code`` names the fault."""
        data = await self._request("POST", "/v1/checks", json={"kind": kind, "value": value})
        return str(data["value"])
