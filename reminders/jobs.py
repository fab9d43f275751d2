"""A claimed row and what deciding about it and sending it needs, read in a few queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from reminders.channels.base import OutgoingMessage
from reminders.models import Channel, Clinic, Course, Message, MessageStatus, Patient
from reminders.timing import to_local, zone

# How a tick's report names each way a row can end before a send.
SETTLED_AS = {
    MessageStatus.cancelled: "cancelled",
    MessageStatus.suppressed: "suppressed",
    MessageStatus.expired: "expired",
    MessageStatus.failed: "failed",
    MessageStatus.held: "held",
    MessageStatus.pending: "deferred",
}
REACHED = (MessageStatus.sent.value, MessageStatus.delivered.value, MessageStatus.undelivered.value)


@dataclass
class Job:
    """A claimed row with everything needed to decide about it and send it."""

    row: Message
    patient: Patient
    clinic: Clinic
    course: Course
    outgoing: OutgoingMessage | None = None


def load_jobs(session: Session, ids: Sequence[int]) -> list[Job]:
    result = session.execute(
        select(Message, Patient, Clinic, Course)
        .join(Patient, col(Patient.id) == Message.patient_id)
        .join(Clinic, col(Clinic.id) == Patient.clinic_id)
        .join(Course, col(Course.id) == Message.course_id)
        .where(col(Message.id).in_(ids))
    )
    return [Job(row, patient, clinic, course) for row, patient, clinic, course in result]


def reached_recently(
    session: Session, patients: Collection[int | None], now: datetime
) -> dict[int, dict[str, date]]:
    """Per patient, the local day each message key reached them in the last week."""
    reached: dict[int, dict[str, date]] = defaultdict(dict)
    rows = session.execute(
        select(
            col(Message.patient_id), col(Message.key), col(Message.sent_at), col(Patient.timezone)
        )
        .join(Patient, col(Patient.id) == Message.patient_id)
        .where(
            col(Message.patient_id).in_(patients),
            col(Message.sent_at) >= now - timedelta(days=8),
            col(Message.status).in_(REACHED),
        )
    )
    for patient_id, key, sent_at, tz in rows:
        day = to_local(sent_at, zone(tz)).date()
        known = reached[patient_id].get(key)
        reached[patient_id][key] = min(day, known) if known else day
    return reached


def courses_with_sms(session: Session, courses: Collection[int | None]) -> set[int]:
    """Courses that already sent an SMS (the opt-out line goes only in the first)."""
    rows = session.execute(
        select(col(Message.course_id))
        .where(
            col(Message.course_id).in_(courses),
            col(Message.channel) == Channel.sms.value,
            col(Message.status).in_(
                (*REACHED, MessageStatus.sending.value, MessageStatus.unknown.value)
            ),
            col(Message.sent_at).is_not(None),
        )
        .distinct()
    )
    return {course_id for (course_id,) in rows}


@dataclass
class TickReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    expired: int = 0
    suppressed: int = 0
    held: int = 0
    cancelled: int = 0
    lost: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass
class Batch:
    """One claimed batch, decided: what to send, and what it carries into the next batch."""

    token: str
    claimed: int
    jobs: list[Job]  # to send, composed
    settled: list[tuple[int, MessageStatus, str, datetime | None]]  # recorded already
    # Per patient, the local day each message reached them lately or is being sent in this
    # batch; and the courses whose first SMS went out or goes in this batch.
    reached: dict[int, dict[str, date]]
    sms_started: set[int]
