"""The staff view knows how many WeChat customer-service messages are left in the window."""

from __future__ import annotations

from datetime import timedelta

from bot.channels.wechat.quota import CustomerServiceQuota
from bot.channels.wechat.tables import wechat_cs_backlog, wechat_cs_quota
from bot.engine.messages import ConversationKey, Reply, ReplyKind
from bot.support.wechat_quota import WeChatQuotaReader
from tests.support.conftest import DeskRig

OPENID = "oAbCdEf123456"


async def test_the_desk_reports_the_messages_left_in_the_wechat_window(rig: DeskRig) -> None:
    db = rig.chat.store.engine  # type: ignore[attr-defined]
    async with db.begin() as conn:
        await conn.run_sync(lambda sync: wechat_cs_quota.create(sync, checkfirst=True))
    quota = CustomerServiceQuota(db, "wx-app")
    rig.desk.quotas["wechat"] = WeChatQuotaReader(quota)
    key = ConversationKey("wechat", "wx-app", OPENID)
    now = rig.chat.clock.now()

    closed = await rig.desk.quota_of(key)
    assert closed is not None
    assert (closed.left, closed.window_ends) == (0, None)

    await quota.open(OPENID, allowance=5, lasts=timedelta(hours=48), now=now)
    await quota.take(OPENID, now)
    left = await rig.desk.quota_of(key)
    assert left is not None
    assert (left.left, left.allowance, left.window_ends) == (4, 5, now + timedelta(hours=48))

    rig.chat.clock.advance(timedelta(hours=49))
    expired = await rig.desk.quota_of(key)
    assert expired is not None
    assert expired.exhausted
    assert expired.window_ends is None
    # Other channels have no such limit.
    assert await rig.desk.quota_of(rig.key()) is None


def test_wechat_kf_transfer_is_offered_only_by_setting_and_only_in_wechat(rig: DeskRig) -> None:
    wechat = ConversationKey("wechat", "wx-app", OPENID)
    assert not rig.desk.transfers_to_wechat_kf(wechat)
    rig.desk.settings = rig.desk.settings.model_copy(update={"wechat_kf_transfer": True})
    assert rig.desk.transfers_to_wechat_kf(wechat)
    assert not rig.desk.transfers_to_wechat_kf(rig.key())


async def test_the_desk_counts_the_reserved_slot_and_the_waiting_messages_and_warns_before_the_last(
    rig: DeskRig,
) -> None:
    db = rig.chat.store.engine  # type: ignore[attr-defined]
    async with db.begin() as conn:
        await conn.run_sync(lambda sync: wechat_cs_quota.create(sync, checkfirst=True))
        await conn.run_sync(lambda sync: wechat_cs_backlog.create(sync, checkfirst=True))
    quota = CustomerServiceQuota(db, "wx-app")
    rig.desk.quotas["wechat"] = WeChatQuotaReader(quota)
    key = ConversationKey("wechat", "wx-app", OPENID)
    now = rig.chat.clock.now()
    await quota.open(OPENID, allowance=5, lasts=timedelta(hours=48), now=now)
    for _ in range(2):
        await quota.take(OPENID, now)
    three = await rig.desk.quota_of(key)
    assert three is not None
    assert (three.left, three.usable, three.warn) == (3, 2, False)
    await quota.take(OPENID, now)
    last = await rig.desk.quota_of(key)
    assert last is not None
    # One more message may go; the slot after it is the sender's "messages wait" notice.
    assert (last.left, last.usable, last.warn, last.exhausted) == (2, 1, True, False)
    await quota.take(OPENID, now)
    await quota.defer(OPENID, Reply(ReplyKind.TEXT, text="kept"), now)
    await quota.defer(OPENID, Reply(ReplyKind.TEXT, text="kept too"), now)
    full = await rig.desk.quota_of(key)
    assert full is not None
    assert (full.usable, full.exhausted, full.waiting) == (0, True, 2)
