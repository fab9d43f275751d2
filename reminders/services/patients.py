"""Reading and changing a patient (enrolment is reminders.services.enrollment)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, func, or_
from sqlmodel import Session, col, select

from reminders.lifecycle import cancel_pending
from reminders.models import (
    Channel,
    ChannelChoice,
    Clinic,
    Course,
    CourseStatus,
    Message,
    Patient,
)
from reminders.paging import page
from reminders.render import LOCALES
from reminders.services import reachability
from reminders.services.clinics import get_clinic
from reminders.services.common import LIVE_STATUSES, Conflict, Context, NotFound
from reminders.services.consent import carry_opt_outs, record_consent
from reminders.services.courses import live_courses, replan
from reminders.services.enrollment import ALREADY_ENROLLED
from reminders.validation import (
    CHANNELS,
    FieldError,
    InvalidInput,
    parse_date_of_birth,
    parse_email,
    parse_external_id,
    parse_name,
    parse_phone,
    parse_timezone,
    text_errors,
)

PATIENT_FIELDS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "external_id",
    "phone",
    "email",
    "channel",
    "timezone",
    "locale",
)


def get_patient(session: Session, *, patient_id: int, clinic_id: int | None) -> Patient:
    """A patient of this clinic; another clinic's patient is not found, like a missing one."""
    patient = session.get(Patient, patient_id)
    if patient is None or patient.clinic_id != clinic_id:
        raise NotFound(f"patient {patient_id} not found")
    return patient


def current_course(session: Session, *, patient_id: int) -> Course | None:
    """The patient's most recent course."""
    return session.exec(
        select(Course).where(Course.patient_id == patient_id).order_by(col(Course.id).desc())
    ).first()


def latest_course_id() -> ScalarSelect[int]:
    """The id of the patient's most recent course, as a subquery correlated to Patient."""
    return (
        select(func.max(Course.id))
        .where(Course.patient_id == Patient.id)
        .correlate(Patient)
        .scalar_subquery()
    )


def search_conditions(text: str, *, region: str) -> list[ColumnElement[bool]]:
    """What `text` may match: a name (first, last or both), an email or a chart number (any
    part, any case), or a phone in any format: read as a number of the clinic's region, or,
    with three digits or more, part of one (so "555-0101" finds +12125550101)."""
    lowered = text.lower()
    full_name = func.lower(Patient.first_name + " " + Patient.last_name)
    matches = [
        full_name.contains(lowered, autoescape=True),
        func.lower(Patient.last_name + " " + Patient.first_name).contains(lowered, autoescape=True),
        func.lower(Patient.email).contains(lowered, autoescape=True),
        func.lower(Patient.external_id).contains(lowered, autoescape=True),
    ]
    with contextlib.suppress(ValueError):
        matches.append(col(Patient.phone) == parse_phone(text, region))
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 3:
        matches.append(col(Patient.phone).contains(digits, autoescape=True))
    return matches


def list_patients(
    session: Session,
    *,
    clinic_id: int | None,
    status: str | None = None,
    search: str = "",
    region: str = "US",
    where: Sequence[ColumnElement[bool]] = (),
    newest_first: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[Patient, Course]], int]:
    """A page of the clinic's patients with their latest course, and the total that match.

    `search` is search_conditions'; `where` adds conditions of the caller's (a page's filter).
    """
    if status is not None and status not in {s.value for s in CourseStatus}:
        raise InvalidInput.one("status", f"{status!r} is not a course status")
    query = (
        select(Patient, Course)
        .join(Course, col(Course.id) == latest_course_id())
        .where(Patient.clinic_id == clinic_id, *where)
    )
    if status is not None:
        query = query.where(Course.status == status)
    text = search.strip()
    if text:
        query = query.where(or_(*search_conditions(text, region=region)))
    order = col(Patient.id).desc() if newest_first else col(Patient.id)
    rows, total = page(session, query, order=(order,), limit=limit, offset=offset)
    return [(patient, course) for patient, course in rows], total


def _check_patient_changes(
    session: Session,
    *,
    patient: Patient,
    clinic: Clinic,
    changes: Mapping[str, Any],
    ctx_today: date,
) -> dict[str, Any]:
    """The patient's fields after `changes`, each checked like an enrolment's."""
    errors = [
        FieldError(name, "unknown field") for name in sorted(set(changes) - set(PATIENT_FIELDS))
    ]
    refused = text_errors(changes)
    if refused:
        raise InvalidInput(errors + refused)
    values = {name: getattr(patient, name) for name in PATIENT_FIELDS}
    values["channel"] = ChannelChoice(patient.channel).value
    for name, value in changes.items():
        text = "" if value is None else str(value).strip()
        try:
            if name in ("first_name", "last_name"):
                values[name] = parse_name(text, required=name == "first_name")
            elif name == "date_of_birth":
                values[name] = parse_date_of_birth(text, today=ctx_today) if text else None
            elif name == "external_id":
                values[name] = parse_external_id(text)
            elif name == "phone":
                values[name] = parse_phone(text, clinic.region) if text else None
            elif name == "email":
                values[name] = parse_email(text) if text else None
            elif name == "channel":
                if text.lower() not in CHANNELS:
                    raise ValueError(f"{text!r} is not one of {', '.join(CHANNELS)}")
                values[name] = text.lower()
            elif name == "timezone":
                values[name] = parse_timezone(text)
            elif name == "locale":
                if text.lower() not in LOCALES:
                    raise ValueError(f"{text!r} is not one of {', '.join(LOCALES)}")
                values[name] = text.lower()
        except ValueError as exc:
            errors.append(FieldError(name, str(exc)))
    if errors:
        raise InvalidInput(errors)
    channel = values["channel"]
    for name, needs in (("phone", ("sms", "both")), ("email", ("email", "both"))):
        if channel in needs and not values[name]:
            errors.append(FieldError(name, f"required for channel {channel}"))
        elif values[name] and values[name] != getattr(patient, name):
            taken = session.exec(
                select(Patient.id)
                .join(Course, col(Course.patient_id) == Patient.id)
                .where(Patient.clinic_id == clinic.id, Patient.id != patient.id)
                .where(getattr(Patient, name) == values[name])
                .where(col(Course.status).in_(LIVE_STATUSES))
            ).first()
            if taken is not None:
                errors.append(FieldError(name, ALREADY_ENROLLED))
    chart = values["external_id"]
    if chart and chart != patient.external_id:
        taken = session.exec(
            select(Patient.id).where(
                Patient.clinic_id == clinic.id,
                Patient.id != patient.id,
                Patient.external_id == chart,
            )
        ).first()
        if taken is not None:
            errors.append(FieldError("external_id", f"chart number of patient {taken}"))
    if errors:
        raise InvalidInput(errors)
    return values


def update_patient(
    session: Session, *, patient: Patient, changes: Mapping[str, Any], source: str, ctx: Context
) -> Patient:
    """Change a patient's contact, channel, zone or locale; pending messages are re-planned.

    A channel the patient opted out of (STOP, an unsubscribe link) cannot be switched back on
    by staff: only the patient can opt in again. A new number or address that opted out in
    another enrolment carries its opt-out here; one that replaces an unreachable contact
    releases what was held for it (reachability.contacts_changed)."""
    clinic = get_clinic(session, patient.clinic_id)
    values = _check_patient_changes(
        session, patient=patient, clinic=clinic, changes=changes, ctx_today=ctx.now.date()
    )
    before = set(ChannelChoice(patient.channel).channels)
    choice = ChannelChoice(values["channel"])
    after = set(choice.channels)
    opted_out = {Channel.sms: patient.sms_opted_out, Channel.email: patient.email_opted_out}
    for added in sorted(after - before):
        if opted_out[added]:
            raise Conflict(
                "channel", f"the patient opted out of {added}; only they can opt back in"
            )
    old = {Channel.sms: patient.phone, Channel.email: patient.email}
    for name, value in values.items():
        setattr(patient, name, value)
    patient.channel = choice
    session.add(patient)
    reachability.contacts_changed(session, patient=patient, old=old, source=source, now=ctx.now)
    for added in sorted(after - before):
        record_consent(
            session, patient=patient, channel=added, opt_in=True, source=source, now=ctx.now
        )
    for removed in sorted(before - after):
        cancel_pending(
            session, patient_id=patient.id, channel=removed, now=ctx.now, reason="channel changed"
        )
    carry_opt_outs(session, patient=patient, now=ctx.now)
    session.flush()
    for course in live_courses(session, patient_id=patient.id):  # type: ignore[arg-type]
        replan(session, course=course, ctx=ctx)
    return patient


def patient_messages(
    session: Session, *, patient_id: int, status: str | None = None
) -> list[Message]:
    """Every outbox row of the patient (planned, sent, delivered, failed...), by due time."""
    query = select(Message).where(Message.patient_id == patient_id)
    if status is not None:
        query = query.where(Message.status == status)
    return list(
        session.exec(
            query.order_by(col(Message.due_at), col(Message.channel), col(Message.id))
        ).all()
    )
