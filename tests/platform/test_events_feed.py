from __future__ import annotations

import httpx
import pytest

from seal_platform.events import EventNotifier, notifier_for, publish
from seal_platform.services import PlatformServices
from tests.platform.conftest import MakeAccount


async def test_feed_lists_events_in_order_of_id(api: httpx.AsyncClient, make_account: MakeAccount) -> None:
    first = await make_account(realname=True)
    second = await make_account()
    page = (await api.get("/v1/events")).json()
    kinds = [(event["type"], event["account_id"]) for event in page["events"]]
    assert kinds == [
        ("account.registered", first.account_id),
        ("account.realname_verified", first.account_id),
        ("account.registered", second.account_id),
    ]
    ids = [event["id"] for event in page["events"]]
    assert ids == sorted(ids)
    assert page["next_after"] == ids[-1]
    assert page["events"][1]["data"] == {"real_name": "张三", "id_number_masked": "360***********0071"}


async def test_after_cursor_and_limit_page_through_the_feed(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    for _ in range(3):
        await make_account()
    everything = [event["id"] for event in (await api.get("/v1/events")).json()["events"]]
    seen: list[int] = []
    after = 0
    while True:
        page = (await api.get("/v1/events", params={"after": after, "limit": 2})).json()
        if not page["events"]:
            assert page["next_after"] == after
            break
        assert len(page["events"]) <= 2
        seen.extend(event["id"] for event in page["events"])
        after = page["next_after"]
    assert seen == everything


async def test_limit_out_of_range_is_refused(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/events", params={"limit": 0})).status_code == 422
    assert (await api.get("/v1/events", params={"limit": 501})).status_code == 422


async def test_feed_does_not_need_an_account_token_but_needs_the_service(
    platform_app: object, api: httpx.AsyncClient
) -> None:
    assert (await api.get("/v1/events")).status_code == 200
    api.headers.pop("Authorization")
    assert (await api.get("/v1/events")).status_code == 401


async def test_notifier_wakes_after_commit_and_not_before(
    platform_app: object, platform_services: PlatformServices
) -> None:
    notifier = notifier_for(platform_services.db)
    assert platform_services.event_notifier is notifier
    wakeups: list[str] = []
    notifier.subscribe(lambda: wakeups.append("woken"))
    async with platform_services.db.session() as session:
        publish(session, None, "test.happened", {"n": 1})
        await session.flush()
        assert wakeups == []
    assert wakeups == ["woken"]


async def test_rolled_back_events_wake_nobody_and_are_not_listed(
    platform_app: object, platform_services: PlatformServices, api: httpx.AsyncClient
) -> None:
    wakeups: list[str] = []
    notifier_for(platform_services.db).subscribe(lambda: wakeups.append("woken"))

    async def publish_then_fail() -> None:
        async with platform_services.db.session() as session:
            publish(session, None, "test.rolled_back", {})
            await session.flush()
            raise RuntimeError("abort the unit of work")

    with pytest.raises(RuntimeError, match="abort the unit of work"):
        await publish_then_fail()
    async with platform_services.db.session() as session:
        await session.flush()  # a later commit without events
    assert wakeups == []
    assert (await api.get("/v1/events")).json()["events"] == []


async def test_registration_wakes_subscribers(
    platform_services: PlatformServices, make_account: MakeAccount
) -> None:
    wakeups: list[str] = []
    notifier_for(platform_services.db).subscribe(lambda: wakeups.append("woken"))
    await make_account()
    assert wakeups == ["woken"]


def test_a_failing_listener_does_not_stop_the_others() -> None:
    notifier = EventNotifier()
    calls: list[str] = []

    def broken() -> None:
        raise ValueError("listener bug")

    notifier.subscribe(broken)
    unsubscribe = notifier.subscribe(lambda: calls.append("second"))
    notifier.notify()
    unsubscribe()
    notifier.notify()
    assert calls == ["second"]
