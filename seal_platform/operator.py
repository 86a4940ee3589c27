"""Who runs the service (settings ``PLATFORM_OPERATOR_*``): the chat's FAQ and header, invoices
and the pay page name the operator from here, never a hard-coded company."""

from __future__ import annotations

from pydantic import BaseModel

from seal_platform.auth import ServicesDep, service_router
from seal_platform.settings import PlatformSettings

router = service_router(prefix="/v1", tags=["operator"])


class OperatorOut(BaseModel):
    service_name: str
    company: str
    hotline: str
    support_hours: str

    @classmethod
    def of(cls, settings: PlatformSettings) -> OperatorOut:
        return cls(
            service_name=settings.operator_service_name,
            company=settings.operator_company,
            hotline=settings.operator_hotline,
            support_hours=settings.operator_support_hours,
        )


def seller_name(settings: PlatformSettings) -> str:
    """The seller on invoices: its own setting, else the operator's company or service name."""
    return settings.invoice_seller_name or settings.operator_company or settings.operator_service_name


@router.get("/operator", response_model=OperatorOut)
async def operator(services: ServicesDep) -> OperatorOut:
    return OperatorOut.of(services.settings)
