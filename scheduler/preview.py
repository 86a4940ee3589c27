"""What the reminder job would send in the next days, computed without sending or claiming.

The same rules as the job (``ReminderSchedule``, quiet hours, opt-out, most recent identity),
read-only: the CLI's ``reminders-preview`` and the staff console show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.engine.store import ConversationStore
from platform_client.reminders import ExpiringSeal, RemindersAPI
from scheduler.deliveries import DeliveryStore, Status
from scheduler.planner import ReminderSchedule, threshold_label
from scheduler.quiet_hours import SendWindow
from scheduler.reminders import read_preferences
from scheduler.settings import SchedulerSettings


@dataclass(frozen=True)
class PreviewLine:
    send_at: datetime  # UTC, after quiet hours
    seal_id: str
    seal_name: str
    seal_kind: str
    threshold: int
    valid_to: datetime
    account_id: str
    channel_key: str | None
    note: str  # why it would not go, or "" when it would

    @property
    def threshold_label(self) -> str:
        return threshold_label(self.threshold)


async def preview_reminders(
    *,
    platform: RemindersAPI,
    store: ConversationStore,
    deliveries: DeliveryStore,
    settings: SchedulerSettings,
    now: datetime,
    days: float,
) -> list[PreviewLine]:
    schedule = ReminderSchedule.from_settings(settings)
    window = SendWindow.from_settings(settings)
    end = now + timedelta(days=days)
    lo, _ = schedule.window(now)
    hi = end + schedule.horizon
    seals = [s async for s in platform.iter_expiring_seals(since=lo, until=hi, page_size=settings.page_size)]
    handled = await deliveries.claimed_keys([s.seal_id for s in seals])
    pending = {
        (d.seal_id, d.threshold, d.valid_to): d
        for d in await deliveries.recent(statuses=Status.PENDING, limit=100_000)
    }
    lines: list[PreviewLine] = []
    for seal in seals:
        for threshold, at in _due_for(schedule, seal, now, end):
            claim = (seal.seal_id, threshold, seal.valid_to)
            if claim in pending:
                at = max(at, pending[claim].next_attempt_at)
            elif claim in handled:
                continue  # sent, or settled otherwise: it will not go again
            lines.append(await _line(store, window, seal, threshold, at))
    return sorted(lines, key=lambda line: (line.send_at, line.seal_id))


def _due_for(
    schedule: ReminderSchedule, seal: ExpiringSeal, now: datetime, end: datetime
) -> list[tuple[int, datetime]]:
    found: list[tuple[int, datetime]] = []
    current = schedule.most_urgent_due(seal.valid_to, now)
    if current is not None:
        found.append((current, now))
    found += schedule.upcoming(seal.valid_to, now, end)
    return found


async def _line(
    store: ConversationStore, window: SendWindow, seal: ExpiringSeal, threshold: int, at: datetime
) -> PreviewLine:
    keys = await store.keys_for_account(seal.account_id)
    note = ""
    preferences = await read_preferences(store, keys)
    if preferences.opted_out:
        note = "opted out"
    elif not keys:
        note = "no chat identity"
    return PreviewLine(
        send_at=window.next_open(at, None),
        seal_id=seal.seal_id,
        seal_name=seal.name,
        seal_kind=seal.kind,
        threshold=threshold,
        valid_to=seal.valid_to,
        account_id=seal.account_id,
        channel_key=str(keys[0]) if keys else None,
        note=note,
    )


def render_table(lines: list[PreviewLine], zone: str) -> str:
    """Plain text for a terminal: one line per reminder, times in ``zone``."""
    tz = ZoneInfo(zone)
    header = f"{'send at':16}  {'threshold':12}  {'expires':10}  {'seal':36}  {'to':40}  name / note"
    rows = [header, "-" * len(header)]
    for line in lines:
        rows.append(
            f"{line.send_at.astimezone(tz):%Y-%m-%d %H:%M}  {line.threshold_label:12}  "
            f"{line.valid_to.astimezone(tz):%Y-%m-%d}  {line.seal_id:36}  {line.channel_key or '-':40}  "
            f"{line.seal_name}{'  [' + line.note + ']' if line.note else ''}"
        )
    rows.append(f"{len(lines)} reminder(s); {sum(1 for line in lines if not line.note)} would be sent")
    return "\n".join(rows)
