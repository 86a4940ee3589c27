"""``POST /v1/checks``: the platform's own validators, for callers that check answers early.

The bot validates each answer as the user types it with the very rules the platform enforces
on submission, without a copy of those rules living in the bot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from seal_platform import validation
from seal_platform.auth import require_service
from seal_platform.services import PlatformServices, get_services

CheckKind = Literal["resident_id", "credit_code", "mobile", "person_name", "password", "waybill"]


class CheckRequest(BaseModel):
    kind: CheckKind
    value: str = Field(max_length=200)


class CheckResult(BaseModel):
    kind: CheckKind
    value: str


router = APIRouter(prefix="/v1/checks", tags=["checks"], dependencies=[Depends(require_service)])


@router.post("", response_model=CheckResult)
async def check(
    body: CheckRequest, services: Annotated[PlatformServices, Depends(get_services)]
) -> CheckResult:
    today = services.clock.now().date()
    checkers: dict[str, Callable[[str], str]] = {
        "resident_id": lambda v: validation.normalise_resident_id(v, today=today),
        "credit_code": validation.normalise_credit_code,
        "mobile": validation.normalise_mobile,
        "person_name": validation.normalise_person_name,
        "password": validation.check_password_policy,
        "waybill": validation.normalise_sf_waybill,
    }
    return CheckResult(kind=body.kind, value=checkers[body.kind](body.value))
