"""Erasing a patient on request or when the clinic's retention period ends.

The name, the phone number and the email address, the texts planned for them and the
replies they sent give way to a marker. What the clinic must keep stays: the consent
ledger's dated opt-ins and opt-outs, the outbox rows with their dates and states (so the
counts stay true), and the audit trail. A patient with a course still running is refused:
stop or finish the course first.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from reminders.clock import as_utc
from reminders.models import Clinic, Course, InboundMessage, Message, Patient
from reminders.services.common import LIVE_STATUSES, Conflict

log = logging.getLogger(__name__)

ERASED = "[erased]"
# An outbox row's parts name templates and their parameters; erased, it names none.
ERASED_PARTS = json.dumps([])


def erase_patient(session: Session, *, patient: Patient, now: datetime) -> Patient:
    """Replace the patient's name, contacts, planned texts and replies with a marker."""
    if patient.erased_at is not None:
        raise Conflict("patient", "is erased already")
    live = session.exec(
        select(Course.id).where(
            Course.patient_id == patient.id, col(Course.status).in_(LIVE_STATUSES)
        )
    ).first()
    if live is not None:
        raise Conflict("course", f"course {live} is still running; stop or finish it first")
    patient.first_name = ERASED
    # Who they were goes too; the chart number is free for the clinic to give again.
    patient.last_name = ""
    patient.date_of_birth = None
    patient.external_id = None
    patient.phone = None
    patient.email = None
    patient.erased_at = now
    session.add(patient)
    # Neither column belongs to an outbox row's state (reminders.lifecycle owns those).
    session.exec(
        update(Message).where(col(Message.patient_id) == patient.id).values(parts=ERASED_PARTS)  # type: ignore[call-overload]
    )
    session.exec(
        update(InboundMessage)  # type: ignore[call-overload]
        .where(col(InboundMessage.patient_id) == patient.id)
        .values(body=ERASED)
    )
    session.flush()
    return patient


def due_for_erasure(session: Session, *, now: datetime) -> list[Patient]:
    """Patients of clinics with a retention period whose last course ended longer ago."""
    ended = (
        select(Course.patient_id, func.max(Course.updated_at).label("ended_at"))
        .group_by(col(Course.patient_id))
        .subquery()
    )
    running = select(Course.patient_id).where(col(Course.status).in_(LIVE_STATUSES))
    rows = session.exec(
        select(Patient, Clinic.retention_days, ended.c.ended_at)
        .join(Clinic, col(Clinic.id) == Patient.clinic_id)
        .join(ended, ended.c.patient_id == Patient.id)
        .where(col(Clinic.retention_days).is_not(None), col(Patient.erased_at).is_(None))
        .where(col(Patient.id).not_in(running))
    ).all()
    return [
        patient
        for patient, days, ended_at in rows
        if as_utc(ended_at) <= now - timedelta(days=days or 0)
    ]
