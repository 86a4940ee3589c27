"""Concurrent requests on one order or one company: exactly one wins, on SQLite and PostgreSQL.

On PostgreSQL the requests really run at once on separate connections (SQLite serialises
writers), so these are the tests of the order race guards: the conditional status UPDATE of
``orders.transition`` and the one-seal-per-kind check of a submission.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import func, select

from seal_platform.orders import OrderTransition
from seal_platform.services import PlatformServices
from tests.platform.conftest import ON_BOTH_DATABASES, MakeAccount
from tests.platform.test_one_seal_per_kind import order_attempt
from tests.platform.test_orders_support import new_enterprise_order

pytestmark = ON_BOTH_DATABASES

RACERS = 6


async def transitions_to(services: PlatformServices, order_id: str, status: str) -> int:
    async with services.db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OrderTransition)
            .where(OrderTransition.order_id == order_id, OrderTransition.to_status == status)
        )
    return int(count or 0)


async def one_draft_raced(
    api: httpx.AsyncClient, make_account: MakeAccount, action: str
) -> tuple[dict[str, Any], list[httpx.Response]]:
    """A new draft order, and the answers to ``RACERS`` posts of ``action`` on it sent at once."""
    account = await make_account(realname=True)
    order = await new_enterprise_order(api, account)
    answers = await asyncio.gather(
        *(api.post(f"/v1/orders/{order['id']}/{action}", headers=account.headers) for _ in range(RACERS))
    )
    return order, list(answers)


async def test_concurrent_cancels_of_one_order_cancel_it_once(
    api: httpx.AsyncClient, make_account: MakeAccount, platform_services: PlatformServices
) -> None:
    order, answers = await one_draft_raced(api, make_account, "cancel")

    assert Counter(a.status_code for a in answers) == {200: 1, 409: RACERS - 1}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"invalid_transition"}
    assert await transitions_to(platform_services, order["id"], "cancelled") == 1


async def test_concurrent_submits_of_one_draft_submit_it_once(
    api: httpx.AsyncClient, make_account: MakeAccount, platform_services: PlatformServices
) -> None:
    order, answers = await one_draft_raced(api, make_account, "submit")

    assert Counter(a.status_code for a in answers) == {200: 1, 409: RACERS - 1}
    assert await transitions_to(platform_services, order["id"], "awaiting_payment") == 1


async def test_two_drafts_for_one_company_submitted_at_once_let_only_one_go_on(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    drafts = [(await order_attempt(api, account)).json() for _ in range(RACERS)]

    answers = await asyncio.gather(
        *(api.post(f"/v1/orders/{d['id']}/submit", headers=account.headers) for d in drafts)
    )

    assert Counter(a.status_code for a in answers) == {200: 1, 409: RACERS - 1}, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"seal_order_open"}
