"""Seal impression previews: what each seal of an order looks like, before and after production.

Before production the impression is drawn from the order's data, exactly as production will
draw it, so the reviewer and the producer see the seal they approve; only the 13-digit seal
code is a stand-in (production allocates the real one), which the page says. After production
(and for orders on an existing seal) the stored impression of the seal itself is shown.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from seal_platform.companies import Company
from seal_platform.documents import get_document_any, read_content
from seal_platform.errors import NotFound
from seal_platform.orders import Order
from seal_platform.pricing import NEW_SEAL_KINDS
from seal_platform.production.impression import draw_enterprise_seal, draw_personal_seal, seal_code
from seal_platform.seals import Seal
from seal_platform.services import PlatformServices

# Screen resolution is plenty for a preview and much cheaper to draw than the 300 dpi original.
PREVIEW_DPI = 150
# Beijing's area code: a stand-in when the credit code's area digits are not a usable area.
_FALLBACK_AREA = "110000"


@dataclass(frozen=True)
class ImpressionPreview:
    kind: str
    holder_name: str
    # True when the image is the produced seal's own impression, False for a drawn preview.
    produced: bool


def _holder_name(kind: str, order: Order, company: Company | None, seal: Seal | None) -> str:
    change = order.details.get("change") or {}
    if kind == "enterprise":
        return str(
            change.get("company_name") or (company.name if company else seal.holder_name if seal else "")
        )
    return str(
        change.get("legal_rep_name")
        or (company.legal_rep_name if company else seal.holder_name if seal else "")
    )


async def order_seals(session: AsyncSession, order: Order) -> list[Seal]:
    """The seals the order made (after production) or acts on."""
    ids = [str(i) for i in order.result.get("seal_ids", [])]
    if order.seal_id is not None and order.seal_id not in ids:
        ids.append(order.seal_id)
    if not ids:
        return []
    return list(await session.scalars(select(Seal).where(Seal.id.in_(ids))))


def previews_for(order: Order, company: Company | None, seals: list[Seal]) -> list[ImpressionPreview]:
    by_kind = {seal.kind: seal for seal in seals}
    kinds = list(NEW_SEAL_KINDS.get(order.type, ())) or [seal.kind for seal in seals]
    previews = []
    for kind in kinds:
        seal = by_kind.get(kind)
        # A change redraws the seal with the new names; until the UKey step the stored one is old.
        produced = (
            seal is not None and seal.impression_document_id is not None and not order.details.get("change")
        )
        previews.append(
            ImpressionPreview(
                kind=kind, holder_name=_holder_name(kind, order, company, seal), produced=produced
            )
        )
    return previews


def placeholder_seal_code(uscc: str) -> str:
    area = uscc[2:8] if len(uscc) >= 8 and uscc[2:8].isdigit() and uscc[2] in "12345678" else _FALLBACK_AREA
    return seal_code(area, 0)


@lru_cache(maxsize=64)
def _draw(kind: str, holder_name: str, code: str) -> bytes:
    if kind == "enterprise":
        return draw_enterprise_seal(holder_name, code, dpi=PREVIEW_DPI).png
    return draw_personal_seal(holder_name, dpi=PREVIEW_DPI).png


async def impression_png(session: AsyncSession, services: PlatformServices, order: Order, kind: str) -> bytes:
    """The PNG of the order's seal of ``kind``: the produced impression, or a drawn preview."""
    company = await session.get(Company, order.company_id) if order.company_id else None
    seals = await order_seals(session, order)
    preview = next((p for p in previews_for(order, company, seals) if p.kind == kind), None)
    if preview is None:
        raise NotFound("the order has no seal of this kind", kind=kind)
    if preview.produced:
        seal = next(s for s in seals if s.kind == kind)
        assert seal.impression_document_id is not None
        return await read_content(services, await get_document_any(session, seal.impression_document_id))
    if not preview.holder_name:
        raise NotFound("the order names no seal holder", kind=kind)
    uscc = company.uscc if company else ""
    seal_codes = [s.seal_code for s in seals if s.kind == kind]
    code = seal_codes[0] if seal_codes else placeholder_seal_code(uscc)
    # Drawing a seal is CPU work for Pillow: keep it off the event loop.
    return await asyncio.to_thread(_draw, kind, preview.holder_name, code)
