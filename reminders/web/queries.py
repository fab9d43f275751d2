"""Read-only queries for the clinic pages: the patient list with search, and the overview.

Every change goes through reminders.services; these only read, always within one clinic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import Session, col, select

from reminders.models import (
    SENT_STATUSES,
    Channel,
    ConsentEvent,
    Course,
    CourseStatus,
    InboundMessage,
    Message,
    MessageStatus,
    Patient,
    ReplyState,
)
from reminders.services import (
    end_to_confirm,
    list_patients,
    list_replies,
    overdue_replies,
    unread_count,
)
from reminders.services.replies import is_overdue
from reminders.timing import local_today

PAGE_SIZE = 50
# What staff should look at: the provider refused the message or it did not arrive.
ATTENTION_STATUSES = (MessageStatus.failed.value, MessageStatus.undelivered.value)
# Rows that say how the latest message fared (pending and cancelled ones say nothing yet).
OUTCOME_STATUSES = tuple(
    status.value
    for status in MessageStatus
    if status not in (MessageStatus.pending, MessageStatus.cancelled)
)
RECENT = timedelta(days=30)
WEEK = timedelta(days=7)


def _needs_attention(now: datetime) -> ColumnElement[bool]:
    """A message that failed or did not arrive in the last 30 days, an unread reply, or a
    contact that cannot be reached."""
    failed = select(Message.patient_id).where(
        col(Message.status).in_(ATTENTION_STATUSES), Message.updated_at >= now - RECENT
    )
    unread = select(InboundMessage.patient_id).where(
        InboundMessage.state == ReplyState.unread.value
    )
    return or_(col(Patient.id).in_(failed), col(Patient.id).in_(unread), _unreachable(now))


def _unreachable(_now: datetime) -> ColumnElement[bool]:
    """A phone or email address marked unreachable: its messages are held until it is fixed."""
    return or_(
        col(Patient.sms_unreachable_at).is_not(None), col(Patient.email_unreachable_at).is_not(None)
    )


def _course_is(status: CourseStatus) -> Callable[[datetime], ColumnElement[bool]]:
    return lambda _now: col(Course.status) == status.value


# The patient list's filters, by their value in the address (?status=...): a label and the
# condition on the patient and their latest course. Add one here and it is on the page.
FILTERS: dict[str, tuple[str, Callable[[datetime], ColumnElement[bool]]]] = {
    "active": ("Active courses", _course_is(CourseStatus.active)),
    "paused": ("Paused courses", _course_is(CourseStatus.paused)),
    "unreachable": ("Cannot be reached", _unreachable),
    "attention": ("Needs attention", _needs_attention),
    "completed": ("Completed courses", _course_is(CourseStatus.completed)),
    "cancelled": ("Stopped courses", _course_is(CourseStatus.cancelled)),
}


@dataclass(frozen=True)
class PatientRow:
    patient: Patient
    course: Course
    next_at: datetime | None  # the next pending message, UTC
    last: Message | None  # the latest message that was sent or settled
    end_to_confirm: bool  # near or past the planned end with no last dose recorded


def patient_rows(
    session: Session,
    *,
    clinic_id: int,
    now: datetime,
    search: str = "",
    region: str = "US",
    show: str | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> tuple[list[PatientRow], int]:
    """A page of the clinic's patients, newest first, with their next message and last outcome.

    `search` is services.list_patients' (a name, an email, a chart number, a phone in any
    format); `show` names one of FILTERS.
    """
    where = [FILTERS[show][1](now)] if show in FILTERS else []
    found, total = list_patients(
        session,
        clinic_id=clinic_id,
        where=where,
        search=search,
        region=region,
        newest_first=True,
        limit=limit,
        offset=offset,
    )
    ids = [patient.id for patient, _course in found]
    next_at = dict(
        session.exec(
            select(Message.patient_id, func.min(Message.due_at))
            .where(col(Message.patient_id).in_(ids), Message.status == MessageStatus.pending.value)
            .group_by(col(Message.patient_id))
        ).all()
    )
    last: dict[int, Message] = {}
    outcomes = session.exec(
        select(Message)
        .where(col(Message.patient_id).in_(ids), col(Message.status).in_(OUTCOME_STATUSES))
        .order_by(col(Message.updated_at).desc(), col(Message.id).desc())
    ).all()
    for message in outcomes:
        last.setdefault(message.patient_id, message)
    rows = [
        PatientRow(
            patient,
            course,
            next_at.get(patient.id),  # type: ignore[arg-type]
            last.get(patient.id),  # type: ignore[arg-type]
            end_to_confirm(course, today=local_today(now, patient.timezone)),
        )
        for patient, course in found
    ]
    return rows, total


@dataclass(frozen=True)
class ReplyRow:
    reply: InboundMessage
    patient: Patient
    overdue: bool  # unread for more than one business day


def reply_rows(
    session: Session,
    *,
    clinic_id: int,
    timezone: str,
    state: str,
    now: datetime,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> tuple[list[ReplyRow], int]:
    """A page of the clinic's inbox, newest first, each reply with its patient."""
    replies, total = list_replies(
        session, clinic_id=clinic_id, state=state, offset=offset, limit=limit
    )
    ids = {reply.patient_id for reply in replies}
    patients = {p.id: p for p in session.exec(select(Patient).where(col(Patient.id).in_(ids)))}
    rows = [
        ReplyRow(
            reply,
            patients[reply.patient_id],
            reply.state == ReplyState.unread and is_overdue(reply.received_at, timezone, now=now),
        )
        for reply in replies
    ]
    return rows, total


@dataclass(frozen=True)
class Overview:
    active: int
    paused: int
    sent_week: int
    delivered_week: int
    planned_week: int
    failed_recent: int
    opted_out: int
    unread_replies: int
    overdue_replies: int  # unread for more than one business day
    failures: list[tuple[Message, Patient]]
    opt_outs: list[tuple[ConsentEvent, Patient]]


def overview(session: Session, *, clinic_id: int, now: datetime) -> Overview:
    """The clinic at a glance: courses, this week's messages, what needs attention."""
    in_clinic = select(Patient.id).where(Patient.clinic_id == clinic_id)
    courses = dict(
        session.exec(
            select(Course.status, func.count())
            .where(col(Course.patient_id).in_(in_clinic))
            .group_by(Course.status)
        ).all()
    )

    def count(*conditions) -> int:  # type: ignore[no-untyped-def]
        query = select(func.count()).select_from(Message)
        query = query.where(col(Message.patient_id).in_(in_clinic), *conditions)
        return session.exec(query).one()

    week_ago = now - WEEK
    sent = [status.value for status in SENT_STATUSES]
    failures = session.exec(
        select(Message, Patient)
        .join(Patient, col(Patient.id) == Message.patient_id)
        .where(Patient.clinic_id == clinic_id, col(Message.status).in_(ATTENTION_STATUSES))
        .where(Message.updated_at >= now - RECENT)
        .order_by(col(Message.updated_at).desc())
        .limit(20)
    ).all()
    opt_outs = session.exec(
        select(ConsentEvent, Patient)
        .join(Patient, col(Patient.id) == ConsentEvent.patient_id)
        .where(Patient.clinic_id == clinic_id, ConsentEvent.action == "opt_out")
        .where(ConsentEvent.at >= now - RECENT)
        .order_by(col(ConsentEvent.at).desc())
        .limit(20)
    ).all()
    opted_out = session.exec(
        select(func.count())
        .select_from(Patient)
        .where(Patient.clinic_id == clinic_id)
        .where(or_(col(Patient.sms_opted_out), col(Patient.email_opted_out)))
    ).one()
    return Overview(
        active=courses.get(CourseStatus.active.value, 0),
        paused=courses.get(CourseStatus.paused.value, 0),
        sent_week=count(col(Message.status).in_(sent), col(Message.sent_at) >= week_ago),
        delivered_week=count(
            Message.status == MessageStatus.delivered.value, col(Message.sent_at) >= week_ago
        ),
        planned_week=count(
            Message.status == MessageStatus.pending.value, Message.due_at < now + WEEK
        ),
        failed_recent=count(
            col(Message.status).in_(ATTENTION_STATUSES), Message.updated_at >= now - RECENT
        ),
        opted_out=opted_out,
        unread_replies=unread_count(session, clinic_id=clinic_id),
        overdue_replies=len(overdue_replies(session, now=now, clinic_id=clinic_id)),
        failures=[(message, patient) for message, patient in failures],
        opt_outs=[(event, patient) for event, patient in opt_outs],
    )


CHANNEL_NAMES = {Channel.sms.value: "SMS", Channel.email.value: "Email"}
