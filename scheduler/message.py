"""The words of an expiry reminder, in the user's language and time zone.

One composition serves both routes: the chat message (text plus the "renew now" button, whose
token ``@go:renew:<seal id>`` opens the renewal flow with ``_arg`` set to the seal) and the
template / subscription notice for WeChat outside its window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from bot.engine.i18n import Translator
from bot.engine.messages import Option
from scheduler.planner import AFTER_EXPIRY, DAY
from scheduler.proactive import ReminderNotice

RENEW_FLOW = "renew"  # the renewal flow (handlers, another module) reads the seal from ``_arg``
OPT_OUT_FLOW = "reminders_off"  # handlers/reminders.py


@dataclass(frozen=True)
class ReminderFacts:
    seal_id: str
    seal_name: str
    seal_kind: str
    threshold: int
    valid_to: datetime


@dataclass(frozen=True)
class ComposedReminder:
    text: str
    options: tuple[Option, ...]
    notice: ReminderNotice


def days_left(valid_to: datetime, now: datetime, zone: tzinfo) -> int:
    """Whole calendar days from today to the expiry date, both in the user's zone."""
    return (valid_to.astimezone(zone).date() - now.astimezone(zone).date()).days


def compose(
    facts: ReminderFacts, t: Translator, *, now: datetime, zone: tzinfo, renewal_window_days: int
) -> ComposedReminder:
    personal = facts.seal_kind == "personal"
    kind = t("reminders.notice.kind_personal" if personal else "reminders.notice.kind_enterprise")
    date = facts.valid_to.astimezone(zone).date().isoformat()
    left = days_left(facts.valid_to, now, zone)
    if facts.threshold == AFTER_EXPIRY or facts.valid_to <= now:
        lead = t("reminders.notice.after", kind=kind, name=facts.seal_name, date=date)
    elif facts.valid_to - now < DAY:
        lead = t("reminders.notice.last_day", kind=kind, name=facts.seal_name, date=date)
    else:
        lead = t("reminders.notice.before", kind=kind, name=facts.seal_name, date=date, days=max(left, 1))
    opens = facts.valid_to - renewal_window_days * DAY
    if now >= opens:
        renewal = t("reminders.notice.renewal_open", window=renewal_window_days)
    else:
        renewal = t(
            "reminders.notice.renewal_opens_on",
            date=opens.astimezone(zone).date().isoformat(),
            window=renewal_window_days,
        )
    text = "\n".join((lead, renewal, t("reminders.notice.stop_hint")))
    renew_label = t("reminders.notice.renew_button")
    options = (
        Option(f"@go:{RENEW_FLOW}:{facts.seal_id}", renew_label),
        Option(f"@go:{OPT_OUT_FLOW}", t("reminders.notice.stop_button")),
    )
    notice = ReminderNotice(
        seal_id=facts.seal_id,
        seal_name=facts.seal_name,
        seal_kind=facts.seal_kind,
        threshold=facts.threshold,
        valid_to=date,
        days_left=left,
        locale=t.locale,
        title=t("reminders.notice.title"),
        text="\n".join((lead, renewal)),
        action_label=renew_label,
        start_payload=f"{RENEW_FLOW}-{facts.seal_id}",
    )
    return ComposedReminder(text=text, options=options, notice=notice)
