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
    renewal_open = now >= opens
    if renewal_open:
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
    # The notice has no buttons below it: the whole message opens the renewal.
    notice_renewal = t("reminders.notice.renewal_open_notice") if renewal_open else renewal
    notice = ReminderNotice(
        seal_id=facts.seal_id,
        seal_name=facts.seal_name,
        seal_kind=facts.seal_kind,
        threshold=facts.threshold,
        valid_to=date,
        days_left=left,
        locale=t.locale,
        title=t("reminders.notice.title"),
        text="\n".join((lead, notice_renewal)),
        action_label=t("reminders.notice.action_open" if renewal_open else "reminders.notice.action_later"),
        start_payload=f"{RENEW_FLOW}-{facts.seal_id}",
        kind_label=kind,
    )
    return ComposedReminder(text=text, options=options, notice=notice)


def compose_mail(
    facts: ReminderFacts, t: Translator, *, now: datetime, zone: tzinfo, renewal_window_days: int
) -> tuple[str, str]:
    """Subject and plain-text body of the e-mail reminder: the chat text, with how to renew
    written out instead of a button."""
    composed = compose(facts, t, now=now, zone=zone, renewal_window_days=renewal_window_days)
    notice = composed.notice
    key = "reminders.notice.mail_subject_after" if notice.days_left < 0 else "reminders.notice.mail_subject"
    subject = t(key, kind=notice.kind_label, name=facts.seal_name, date=notice.valid_to)
    lead = composed.text.split("\n", 1)[0]
    opens = facts.valid_to - renewal_window_days * DAY
    renewal = (
        t("reminders.notice.mail_how")
        if now >= opens
        else t(
            "reminders.notice.renewal_opens_on",
            date=opens.astimezone(zone).date().isoformat(),
            window=renewal_window_days,
        )
    )
    return subject, "\n\n".join((lead, renewal, t("reminders.notice.mail_stop")))
