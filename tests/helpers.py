"""Small builders shared by tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from reminders.db import session_scope
from reminders.models import Clinic, Course, Message, Patient
from reminders.runtime import Runtime
from reminders.services import create_clinic, enroll, receive_text, record_text

# `reminders clinic add` with what every clinic must give.
CLINIC_ADD = [
    "clinic",
    "add",
    "--name",
    "Riverside Dermatology",
    "--help-contact",
    "(212) 555-0100",
]


class Clock:
    """A settable clock for the dispatcher: tests move `now` by hand, nothing waits."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def max_in_any_window(times: list[float], width: float = 1.0) -> int:
    """The most events that fall in any half-open window [t, t + width)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def add_clinic(rt: Runtime, now: datetime, **kwargs: Any) -> Clinic:
    with session_scope(rt.engine) as session:
        clinic, _key = create_clinic(
            session,
            name=kwargs.pop("name", "Riverside Dermatology"),
            help_contact="(212) 555-0100",
            now=now,
            **kwargs,
        )
        return clinic


def add_patient(
    rt: Runtime, clinic: Clinic, now: datetime, **fields: Any
) -> tuple[Patient, Course]:
    raw = {
        "first_name": "Ana",
        "phone": "+12125550101",
        "channel": "sms",
        "timezone": "America/New_York",
        "start_date": now.date().isoformat(),
    }
    raw.update(fields)
    with session_scope(rt.engine) as session:
        return enroll(session, clinic=clinic, raw=raw, source="staff", ctx=rt.context(now))


def receive(rt: Runtime, *, phone: str, body: str, at: datetime, sid: str | None = None) -> None:
    """A patient's text, through the webhook's two steps: recorded, then applied."""
    import uuid

    with session_scope(rt.engine) as session:
        text_id = record_text(
            session,
            message_sid=sid or f"SM{uuid.uuid4().hex}",
            phone=phone,
            body=body,
            opt_out_type=None,
            now=at,
        )
        assert text_id is not None, "a MessageSid recorded before"
        receive_text(session, text_id=text_id, ctx=rt.context(at))


def outbox(rt: Runtime, **where: Any) -> list[Message]:
    with Session(rt.engine) as session:
        query = select(Message).order_by(Message.due_at, Message.channel)  # type: ignore[arg-type]
        for name, value in where.items():
            query = query.where(getattr(Message, name) == value)
        return list(session.exec(query).all())


def daytime_zone(now: datetime) -> str:
    """A fixed-offset zone where `now` is around midday: no quiet hours in the way."""
    offset = 12 - now.hour  # local hour = utc hour + offset
    offset = max(-12, min(14, offset))
    # POSIX-style names invert the sign: Etc/GMT-3 is three hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def seed_due(engine, count: int, now: datetime) -> list[str]:  # type: ignore[no-untyped-def]
    """Insert `count` patients, each with an active course and one welcome SMS due now.

    Bulk inserts, for tests that need thousands of due messages quickly. The courses are
    marked planned well ahead, so a worker's planner leaves them alone. Returns the phones.
    """
    import json
    from datetime import timedelta

    from reminders.models import Clinic, Course, Patient

    zone_name = daytime_zone(now)
    phones = [f"+1212{n:07d}" for n in range(count)]
    with session_scope(engine) as session:
        clinic = Clinic(name="Riverside Dermatology", help_contact="(212) 555-0100")
        session.add(clinic)
        session.flush()
        patients = [
            Patient(
                clinic_id=clinic.id,
                first_name=f"P{n}",
                phone=phone,
                channel="sms",
                timezone=zone_name,
                consent_at=now,
                consent_source="import",
            )
            for n, phone in enumerate(phones)
        ]
        session.add_all(patients)
        session.flush()
        courses = [
            Course(
                patient_id=p.id,
                start_date=now.date(),
                plan_from=now,
                planned_until=now + timedelta(days=365),
            )
            for p in patients
        ]
        session.add_all(courses)
        session.flush()
        session.add_all(
            Message(
                course_id=c.id,
                patient_id=c.patient_id,
                key="welcome",
                channel="sms",
                topics="welcome",
                items="welcome",
                parts=json.dumps([["welcome", {}]]),
                priority=100,
                due_at=now,
                send_after=now,
                expires_at=now + timedelta(days=7),
                created_at=now,
                updated_at=now,
            )
            for c in courses
        )
    return phones
