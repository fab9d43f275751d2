"""The clinic's worklist: everything that needs a person, oldest first, each with a link.

Read-only and cheap: one query per kind of item (never one per patient), run inside the
caller's read transaction (`db.read_scope`). The kinds:

- `reply`: a patient's reply unread for more than WORKLIST_REPLY_HOURS;
- `unreachable`: a phone or email of a live course that cannot be reached (its messages
  are held until it is fixed);
- `no_channel`: a patient with a live course and no reachable channel at all (every channel
  they chose is opted out or unreachable);
- `confirm_end`: an active course within 7 days of its planned end, or past it, with no
  recorded last dose;
- `ipledge_test`: an iPLEDGE patient whose monthly window is open with no test recorded;
- `failed`: a message that ended `failed` in the last 30 days.

An item is **overdue** when it has waited more than one business day (24 hours of
Monday-to-Friday time in the clinic's zone, the rule replies already follow), and a course to
confirm once its planned end has passed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy import select as columns
from sqlmodel import Session, col, select

from reminders.careplan import CarePlan
from reminders.models import (
    Channel,
    ChannelChoice,
    Clinic,
    ConsentEvent,
    Course,
    CourseEvent,
    CourseStatus,
    InboundMessage,
    Message,
    MessageStatus,
    Patient,
    ReplyState,
)
from reminders.planning import PREGNANCY_TEST
from reminders.services.common import LIVE_STATUSES
from reminders.services.courses import courses_to_confirm
from reminders.services.patients import latest_course_id
from reminders.services.replies import is_overdue
from reminders.timing import local_instant, local_today, zone

# In the order a tie (the same instant) is listed.
KINDS = ("reply", "unreachable", "no_channel", "confirm_end", "ipledge_test", "failed")
LABELS = {
    "reply": "unread replies",
    "unreachable": "unreachable contacts",
    "no_channel": "patients no channel reaches",
    "confirm_end": "courses to confirm",
    "ipledge_test": "iPLEDGE tests to record",
    "failed": "failed messages",
}
ONE = {
    "reply": "unread reply",
    "unreachable": "unreachable contact",
    "no_channel": "patient no channel reaches",
    "confirm_end": "course to confirm",
    "ipledge_test": "iPLEDGE test to record",
    "failed": "failed message",
}
FAILED_WITHIN = timedelta(days=30)
# Where staff act on an item: the clinic pages' paths (the web process serves them).
PAGES = "/clinic"
_CHANNEL_WORD = {Channel.sms: "phone", Channel.email: "email"}


@dataclass(frozen=True)
class Item:
    kind: str  # one of KINDS
    patient_id: int
    course_id: int | None
    since: datetime
    detail: str  # what to do, in a few words; never a contact or a message text
    link: str
    overdue: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "since": self.since.isoformat().replace("+00:00", "Z")}


def _patient_link(patient_id: int, anchor: str = "") -> str:
    return f"{PAGES}/patients/{patient_id}{anchor}"


def worklist(
    session: Session, *, clinic_id: int, now: datetime, careplan: CarePlan, reply_hours: float
) -> list[Item]:
    """Everything at the clinic that needs a person at `now`, oldest first."""
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        return []
    items = [
        *_replies(session, clinic_id, now - timedelta(hours=reply_hours)),
        *_contacts(session, clinic_id),
        *_to_confirm(session, clinic_id, now),
        *_ipledge(session, clinic, careplan, now),
        *_failed(session, clinic_id, now),
    ]
    items = [
        item
        if item.kind == "confirm_end"
        else _with(item, overdue=is_overdue(item.since, clinic.timezone, now=now))
        for item in items
    ]
    return sorted(items, key=lambda i: (i.since, KINDS.index(i.kind), i.patient_id))


def counts(items: Iterable[Item]) -> dict[str, int]:
    """How many items of each kind (every kind named, zero included)."""
    found = Counter(item.kind for item in items)
    return {kind: found.get(kind, 0) for kind in KINDS}


def label(kind: str, number: int) -> str:
    """`number` items of `kind` in words: "1 unread reply", "2 unread replies"."""
    return f"{number} {ONE[kind] if number == 1 else LABELS[kind]}"


def _with(item: Item, **changes: Any) -> Item:
    return Item(**{**asdict(item), **changes})


def _replies(session: Session, clinic_id: int, before: datetime) -> list[Item]:
    rows = session.execute(
        columns(
            col(InboundMessage.id),
            col(InboundMessage.patient_id),
            col(InboundMessage.course_id),
            col(InboundMessage.received_at),
        )
        .where(col(InboundMessage.clinic_id) == clinic_id)
        .where(col(InboundMessage.state) == ReplyState.unread.value)
        .where(col(InboundMessage.received_at) <= before)
    ).all()
    return [
        Item("reply", patient, course, at, "unread reply", _patient_link(patient, f"#reply-{id_}"))
        for id_, patient, course, at in rows
    ]


def _contacts(session: Session, clinic_id: int) -> list[Item]:
    """Unreachable contacts, and patients no channel reaches, of live courses."""
    rows = session.exec(
        select(Patient, Course.id)
        .join(Course, col(Course.id) == latest_course_id())
        .where(Patient.clinic_id == clinic_id, col(Patient.erased_at).is_(None))
        .where(col(Course.status).in_(LIVE_STATUSES))
        .where(
            or_(
                col(Patient.sms_unreachable_at).is_not(None),
                col(Patient.email_unreachable_at).is_not(None),
                col(Patient.sms_opted_out),
                col(Patient.email_opted_out),
            )
        )
    ).all()
    stopped = _opt_out_times(session, [patient.id for patient, _ in rows])  # type: ignore[misc]
    items = []
    for patient, course_id in rows:
        assert patient.id is not None
        link = _patient_link(patient.id)
        blocked: list[datetime] = []
        for channel in ChannelChoice(patient.channel).channels:
            reason = patient.unreachable(channel)
            opted = patient.sms_opted_out if channel == Channel.sms else patient.email_opted_out
            if opted:
                blocked.append(stopped.get((patient.id, channel.value), patient.created_at))
            elif reason is not None:
                since = getattr(patient, f"{channel.value}_unreachable_at")
                blocked.append(since)
                detail = f"{_CHANNEL_WORD[channel]} unreachable: {reason}; fix it to send"
                items.append(Item("unreachable", patient.id, course_id, since, detail, link))
        if len(blocked) == len(ChannelChoice(patient.channel).channels):
            detail = "no channel reaches this patient: call them"
            items.append(Item("no_channel", patient.id, course_id, max(blocked), detail, link))
    return items


def _opt_out_times(session: Session, patient_ids: list[int]) -> dict[tuple[int, str], datetime]:
    """When each (patient, channel) last opted out, in one query."""
    if not patient_ids:
        return {}
    rows = session.execute(
        columns(col(ConsentEvent.patient_id), col(ConsentEvent.channel), func.max(ConsentEvent.at))
        .where(col(ConsentEvent.patient_id).in_(patient_ids), col(ConsentEvent.action) == "opt_out")
        .group_by(col(ConsentEvent.patient_id), col(ConsentEvent.channel))
    ).all()
    return {(patient_id, str(channel)): at for patient_id, channel, at in rows}


def _to_confirm(session: Session, clinic_id: int, now: datetime) -> list[Item]:
    items = []
    for course, patient in courses_to_confirm(session, now=now, clinic_id=clinic_id):
        assert course.id is not None and patient.id is not None
        end = course.start_date + timedelta(weeks=course.weeks)
        since = local_instant(end - timedelta(days=7), time(0, 0), zone(patient.timezone))
        detail = f"planned end {end:%a %d %b %Y}: confirm the last dose or extend"
        overdue = local_today(now, patient.timezone) > end
        link = _patient_link(patient.id, "#action-end")
        items.append(Item("confirm_end", patient.id, course.id, since, detail, link, overdue))
    return items


def monthly_window(
    *, start: date, end: date, tests: Iterable[date], today: date, careplan: CarePlan
) -> tuple[int, date] | None:
    """The iPLEDGE month whose window is open `today` with no test recorded for it, and the
    day it opened; None when there is none. The window is the planner's: it opens
    `monthly_lead_days` before the monthly visit and closes on the visit; a test taken up to
    `window_days` before it opens counts for it (planning._ipledge_candidates)."""
    steps = careplan.ipledge
    taken = list(tests)
    month = 1
    while (visit := start + timedelta(days=steps.monthly_every_days * month)) <= end:
        opens = visit - timedelta(days=steps.monthly_lead_days)
        closes = min(visit, opens + timedelta(days=steps.monthly_grace_days))
        if opens <= today <= closes:
            if any(opens - timedelta(days=steps.window_days) < t <= closes for t in taken):
                return None
            return month, opens
        month += 1
    return None


def _ipledge(session: Session, clinic: Clinic, careplan: CarePlan, now: datetime) -> list[Item]:
    if not clinic.ipledge_enabled:
        return []
    rows = session.exec(
        select(Course, Patient)
        .join(Patient, col(Patient.id) == Course.patient_id)
        .where(Patient.clinic_id == clinic.id, col(Patient.ipledge))
        .where(Course.status == CourseStatus.active.value, col(Course.last_dose_date).is_(None))
    ).all()
    if not rows:
        return []
    tests: dict[int, list[date]] = {}
    for course_id, day in session.execute(
        columns(col(CourseEvent.course_id), col(CourseEvent.date))
        .where(col(CourseEvent.course_id).in_([course.id for course, _ in rows]))
        .where(col(CourseEvent.type) == PREGNANCY_TEST)
    ).all():
        tests.setdefault(course_id, []).append(day)
    items = []
    for course, patient in rows:
        assert course.id is not None and patient.id is not None
        found = monthly_window(
            start=course.start_date,
            end=course.start_date + timedelta(weeks=course.weeks),
            tests=tests.get(course.id, []),
            today=local_today(now, patient.timezone),
            careplan=careplan,
        )
        if found is not None:
            month, opened = found
            since = local_instant(opened, time(0, 0), zone(patient.timezone))
            detail = f"month {month}: no pregnancy test recorded yet"
            link = _patient_link(patient.id, "#action-test")
            items.append(Item("ipledge_test", patient.id, course.id, since, detail, link))
    return items


def _failed(session: Session, clinic_id: int, now: datetime) -> list[Item]:
    rows = session.execute(
        columns(
            col(Message.patient_id),
            col(Message.course_id),
            col(Message.updated_at),
            col(Message.last_error),
        )
        .join(Patient, col(Patient.id) == Message.patient_id)
        .where(col(Patient.clinic_id) == clinic_id)
        .where(col(Message.status) == MessageStatus.failed.value)
        .where(col(Message.updated_at) >= now - FAILED_WITHIN)
    ).all()
    return [
        Item(
            "failed",
            patient,
            course,
            at,
            f"failed: {error or 'no reason'}",
            _patient_link(patient, "#past"),
        )
        for patient, course, at, error in rows
    ]
