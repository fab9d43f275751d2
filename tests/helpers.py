"""Small builders shared by tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from reminders.db import session_scope
from reminders.models import Clinic, Course, Message, Patient
from reminders.runtime import Runtime
from reminders.services import create_clinic, enroll


def add_clinic(rt: Runtime, now: datetime, **kwargs: Any) -> Clinic:
    with session_scope(rt.engine) as session:
        clinic, _key = create_clinic(
            session,
            name=kwargs.pop("name", "Riverside Dermatology"),
            help_contact="555-0100",
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


def outbox(rt: Runtime, **where: Any) -> list[Message]:
    with Session(rt.engine) as session:
        query = select(Message).order_by(Message.due_at, Message.channel)  # type: ignore[arg-type]
        for name, value in where.items():
            query = query.where(getattr(Message, name) == value)
        return list(session.exec(query).all())
