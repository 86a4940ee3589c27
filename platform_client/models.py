"""Response models of the platform API. Unknown fields are ignored so that the platform may
grow its answers without breaking deployed bots."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class PlatformModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


SmsPurpose = Literal["register", "login", "cancel_seal", "reset_password", "export_data", "delete_account"]


class SmsCodeSent(PlatformModel):
    phone: str
    purpose: str
    expires_at: datetime
    resend_after_seconds: int


class Session(PlatformModel):
    account_id: str
    token: str
    expires_at: datetime


class Account(PlatformModel):
    id: str
    phone: str
    created_at: datetime
    realname_status: Literal["none", "verified"]
    real_name: str | None = None
    id_number_masked: str | None = None
    realname_verified_at: datetime | None = None

    @property
    def is_realname_verified(self) -> bool:
        return self.realname_status == "verified"


class Registration(PlatformModel):
    account: Account
    session: Session


class PlatformEvent(PlatformModel):
    id: int
    account_id: str | None
    type: str
    data: dict[str, Any]
    created_at: datetime


class EventPage(PlatformModel):
    events: list[PlatformEvent]
    next_after: int
