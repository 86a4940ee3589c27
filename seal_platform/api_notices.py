"""The account's e-mailed status notices (``notices``): read and choose the opt-in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from seal_platform import notices
from seal_platform.auth import AccountDep, ServicesDep, service_router
from seal_platform.mail import mail_enabled

router = service_router(prefix="/v1", tags=["notices"])


class NoticesOut(BaseModel):
    # Whether the platform can mail at all: without SMTP nothing offers e-mail.
    available: bool
    enabled: bool
    email: str
    language: str


class NoticesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    # Needed to opt in unless one was given before; a shape check only.
    email: str | None = Field(default=None, max_length=200, pattern=notices.EMAIL_PATTERN)
    # The language of the mails; omitted: unchanged (zh-CN for a first choice).
    language: Literal["zh-CN", "en"] | None = None


@router.get("/me/notices", response_model=NoticesOut)
async def get_notices(services: ServicesDep, account: AccountDep) -> NoticesOut:
    async with services.db.session() as session:
        row = await notices.preference(session, account.id)
    return NoticesOut(
        available=mail_enabled(services.settings),
        enabled=bool(row and row.enabled and mail_enabled(services.settings)),
        email=row.email if row else "",
        language=row.language if row else "zh-CN",
    )


@router.put("/me/notices", response_model=NoticesOut)
async def put_notices(body: NoticesIn, services: ServicesDep, account: AccountDep) -> NoticesOut:
    async with services.db.session() as session:
        row = await notices.set_preference(
            session, services, account.id, enabled=body.enabled, email=body.email, language=body.language
        )
        return NoticesOut(
            available=mail_enabled(services.settings),
            enabled=row.enabled,
            email=row.email,
            language=row.language,
        )
