"""Enrolment, and reading and changing a patient."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, delete, func, insert, or_
from sqlmodel import Session, SQLModel, col, select

from reminders.lifecycle import cancel_pending
from reminders.models import (
    Channel,
    ChannelChoice,
    Clinic,
    ConsentEvent,
    Course,
    CourseEvent,
    CourseStatus,
    Message,
    Patient,
)
from reminders.outbox import materialize
from reminders.render import LOCALES
from reminders.services import reachability
from reminders.services.clinics import get_clinic
from reminders.services.common import LIVE_STATUSES, Conflict, Context, NotFound
from reminders.services.consent import carry_opt_outs, record_consent
from reminders.services.courses import live_courses, replan
from reminders.validation import (
    CHANNELS,
    Enrollment,
    FieldError,
    InvalidInput,
    parse_email,
    parse_phone,
    parse_timezone,
    text_errors,
    validate_enrollment,
)

ALREADY_ENROLLED = "already enrolled in an active course at this clinic"


def live_contacts(
    session: Session, *, clinic_id: int, phones: Collection[str], emails: Collection[str]
) -> tuple[set[str], set[str]]:
    """Which of these phones and emails already have a live course at the clinic."""
    live = (
        select(Patient.phone, Patient.email)
        .join(Course, col(Course.patient_id) == Patient.id)
        .where(Patient.clinic_id == clinic_id, col(Course.status).in_(LIVE_STATUSES))
    )
    # One query per kind of contact, each on its own index.
    found_phones: set[str] = set()
    found_emails: set[str] = set()
    if phones:
        rows = session.exec(live.where(col(Patient.phone).in_(list(phones)))).all()
        found_phones = {phone for phone, _ in rows if phone is not None}
    if emails:
        rows = session.exec(live.where(col(Patient.email).in_(list(emails)))).all()
        found_emails = {email for _, email in rows if email is not None}
    return found_phones, found_emails


def enrollment_conflict(
    data: Enrollment, *, phones: Collection[str], emails: Collection[str]
) -> FieldError | None:
    """The field of an enrolment whose contact already has a live course, if any."""
    if data.phone and data.phone in phones:
        return FieldError("phone", ALREADY_ENROLLED)
    if data.email and data.email in emails:
        return FieldError("email", ALREADY_ENROLLED)
    return None


def check_enrollment(
    session: Session, *, clinic: Clinic, raw: Mapping[str, Any], now: datetime
) -> Enrollment:
    """Validate an enrolment, including that the contact has no live course at the clinic."""
    enrollment = validate_enrollment(raw, region=clinic.region, now=now)
    phones, emails = live_contacts(
        session,
        clinic_id=clinic.id,  # type: ignore[arg-type]
        phones=[enrollment.phone] if enrollment.phone else [],
        emails=[enrollment.email] if enrollment.email else [],
    )
    conflict = enrollment_conflict(enrollment, phones=phones, emails=emails)
    if conflict is not None:
        raise InvalidInput([conflict])
    return enrollment


def enroll(
    session: Session,
    *,
    clinic: Clinic,
    raw: Mapping[str, Any],
    source: str,
    ctx: Context,
) -> tuple[Patient, Course]:
    """Enroll a patient with a course, record their consent, and plan the first messages.

    A number or an address that opted out in another enrolment (at any clinic) stays opted
    out: its channel is planned nothing until the patient opts in again.
    """
    data = check_enrollment(session, clinic=clinic, raw=raw, now=ctx.now)
    [(patient_id, course_id)] = create_enrollments(
        session, clinic=clinic, enrollments=[data], source=source, now=ctx.now
    )
    patient, course = session.get(Patient, patient_id), session.get(Course, course_id)
    assert patient is not None and course is not None
    materialize(session, course=course, careplan=ctx.careplan, now=ctx.now, horizon=ctx.horizon)
    return patient, course


def create_enrollments(
    session: Session,
    *,
    clinic: Clinic,
    enrollments: Sequence[Enrollment],
    source: str,
    now: datetime,
) -> list[tuple[int, int]]:
    """Write checked enrolments: the patients, their consent, their courses (not planned yet).

    A few statements for any number of them (a spreadsheet of thousands writes in batches of
    this); returns (patient id, course id) in the order given. A number or address that
    opted out in another enrolment stays opted out (carry_opt_outs).
    """
    patients = [
        {
            "clinic_id": clinic.id,
            "public_id": uuid.uuid4().hex,
            "first_name": data.first_name,
            "phone": data.phone,
            "email": data.email,
            "channel": data.channel,
            "timezone": data.timezone,
            "locale": data.locale,
            "ipledge": data.ipledge,
            "consent_at": now,
            "consent_source": source,
            "sms_opted_out": False,
            "email_opted_out": False,
            "created_at": now,
        }
        for data in enrollments
    ]
    patient_ids = _insert(session, Patient, patients)
    consents = [
        {
            "patient_id": patient_id,
            "channel": channel.value,
            "action": "opt_in",
            "source": source,
            "detail": "",
            "at": now,
        }
        for patient_id, data in zip(patient_ids, enrollments, strict=True)
        for channel in ChannelChoice(data.channel).channels
    ]
    session.execute(insert(ConsentEvent), consents)
    _carry_opt_outs(session, patient_ids, enrollments, now=now)
    courses = [
        {
            "patient_id": patient_id,
            "start_date": data.start_date,
            "weeks": data.weeks,
            "last_dose_date": None,
            "status": CourseStatus.active.value,
            "plan_from": now,
            "planned_until": None,
            "created_at": now,
            "updated_at": now,
        }
        for patient_id, data in zip(patient_ids, enrollments, strict=True)
    ]
    return list(zip(patient_ids, _insert(session, Course, courses), strict=True))


def _carry_opt_outs(
    session: Session, patient_ids: list[int], enrollments: Sequence[Enrollment], *, now: datetime
) -> None:
    """carry_opt_outs for the new patients whose phone or email opted out elsewhere (found by
    one query: a large import pays for the few)."""
    phones = {data.phone for data in enrollments if data.phone}
    emails = {data.email for data in enrollments if data.email}
    opted = session.exec(
        select(Patient.phone, Patient.email).where(
            or_(
                col(Patient.phone).in_(list(phones)) & col(Patient.sms_opted_out),
                col(Patient.email).in_(list(emails)) & col(Patient.email_opted_out),
            )
        )
    ).all()
    opted_contacts = {contact for row in opted for contact in row if contact}
    for patient_id, data in zip(patient_ids, enrollments, strict=True):
        if {data.phone, data.email} & opted_contacts:
            patient = session.get(Patient, patient_id)
            assert patient is not None
            carry_opt_outs(session, patient=patient, now=now)


def _insert(session: Session, table: type[SQLModel], rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in one statement; their new ids, in the order given."""
    statement = insert(table).returning(table.id, sort_by_parameter_order=True)  # type: ignore[attr-defined]
    return list(session.execute(statement, rows).scalars())


def remove_enrollments(session: Session, *, patient_ids: list[int]) -> None:
    """Delete patients enrolled moments ago whose enrolment is being undone, with their consent
    and courses. Only for enrolments never planned: nothing was sent to them."""
    courses = select(Course.id).where(col(Course.patient_id).in_(patient_ids))
    session.execute(delete(CourseEvent).where(col(CourseEvent.course_id).in_(courses)))
    session.execute(delete(Course).where(col(Course.patient_id).in_(patient_ids)))
    session.execute(delete(ConsentEvent).where(col(ConsentEvent.patient_id).in_(patient_ids)))
    session.execute(delete(Patient).where(col(Patient.id).in_(patient_ids)))


PATIENT_FIELDS = ("first_name", "phone", "email", "channel", "timezone", "locale")


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


def list_patients(
    session: Session,
    *,
    clinic_id: int | None,
    status: str | None = None,
    search: str = "",
    newest_first: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[Patient, Course]], int]:
    """A page of the clinic's patients with their latest course, and the total that match.

    `search` matches the first name or email (any part, any case) or, with three digits or
    more, the phone number (so "555-0101" finds +12125550101).
    """
    if status is not None and status not in {s.value for s in CourseStatus}:
        raise InvalidInput.one("status", f"{status!r} is not a course status")
    query = (
        select(Patient, Course)
        .join(Course, col(Course.id) == latest_course_id())
        .where(Patient.clinic_id == clinic_id)
    )
    if status is not None:
        query = query.where(Course.status == status)
    text = search.strip()
    if text:
        matches = [
            func.lower(Patient.first_name).contains(text.lower(), autoescape=True),
            func.lower(Patient.email).contains(text.lower(), autoescape=True),
        ]
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 3:
            matches.append(col(Patient.phone).contains(digits, autoescape=True))
        query = query.where(or_(*matches))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    order = col(Patient.id).desc() if newest_first else col(Patient.id)
    rows = session.exec(query.order_by(order).offset(offset).limit(limit)).all()
    return [(patient, course) for patient, course in rows], total


def _check_patient_changes(
    session: Session, *, patient: Patient, clinic: Clinic, changes: Mapping[str, Any]
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
            if name == "first_name":
                if not text or len(text) > 80:
                    raise ValueError("required, at most 80 characters")
                values[name] = text
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
    values = _check_patient_changes(session, patient=patient, clinic=clinic, changes=changes)
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
