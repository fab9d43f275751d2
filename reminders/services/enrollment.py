"""Enrolment: a new patient with a course, or a new course for a patient the clinic has.

A patient the clinic already has is recognised by the clinic's chart number (`external_id`)
or, without one, by the same phone and the same first and last name: a returning patient gets
a new course on their record, so their history, replies and consent stay in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_
from sqlmodel import Session, SQLModel, col, select

from reminders.models import (
    ChannelChoice,
    Clinic,
    ConsentEvent,
    Course,
    CourseEvent,
    CourseStatus,
    Patient,
)
from reminders.outbox import materialize
from reminders.services.common import LIVE_STATUSES, Context
from reminders.services.consent import carry_opt_outs, opted_out
from reminders.validation import Enrollment, FieldError, InvalidInput, validate_enrollment

ALREADY_ENROLLED = "already enrolled in an active course at this clinic"


@dataclass(frozen=True)
class Known:
    """The clinic's patient an enrolment names, and their live course if they have one."""

    patient_id: int
    live_course_id: int | None
    by: str  # the field that recognised them: external_id or phone


def _same_name(patient_first: str, patient_last: str, data: Enrollment) -> bool:
    return (patient_first.casefold(), patient_last.casefold()) == (
        data.first_name.casefold(),
        data.last_name.casefold(),
    )


def known_patients(
    session: Session, *, clinic_id: int, enrollments: Sequence[Enrollment]
) -> list[Known | None]:
    """For each enrolment, the clinic's patient it names, if any: the same chart number, or
    the same phone and name (a patient with another chart number is someone else).

    Two queries for any number of enrolments, each on an index, and one for live courses."""
    charts = {data.external_id for data in enrollments if data.external_id}
    phones = {data.phone for data in enrollments if data.phone}
    by_chart: dict[str, int] = {}
    by_phone: dict[str, list[tuple[int, str, str, str | None]]] = {}
    mine = (Patient.clinic_id == clinic_id, col(Patient.erased_at).is_(None))
    if charts:
        for patient_id, chart in session.exec(
            select(Patient.id, Patient.external_id).where(
                *mine, col(Patient.external_id).in_(list(charts))
            )
        ).all():
            by_chart[chart] = patient_id  # type: ignore[index, assignment]
    if phones:
        rows = session.exec(
            select(Patient)
            .where(*mine, col(Patient.phone).in_(list(phones)))
            .order_by(col(Patient.id).desc())
        ).all()
        for row in rows:
            entry = (row.id, row.first_name, row.last_name, row.external_id)
            by_phone.setdefault(row.phone, []).append(entry)  # type: ignore[arg-type]
    found: list[tuple[int, str] | None] = []
    for data in enrollments:
        match: tuple[int, str] | None = None
        if data.external_id and data.external_id in by_chart:
            match = (by_chart[data.external_id], "external_id")
        elif data.phone:
            for patient_id, first, last, chart in by_phone.get(data.phone, []):
                if chart in (None, data.external_id) and _same_name(first, last, data):
                    match = (patient_id, "phone")
                    break
        found.append(match)
    ids = {match[0] for match in found if match}
    live: dict[int, int | None] = {}
    if ids:
        live = dict(
            session.exec(
                select(Course.patient_id, func.max(Course.id))
                .where(col(Course.patient_id).in_(ids), col(Course.status).in_(LIVE_STATUSES))
                .group_by(col(Course.patient_id))
            ).all()
        )
    return [Known(match[0], live.get(match[0]), match[1]) if match else None for match in found]


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
) -> tuple[Enrollment, Known | None]:
    """Validate an enrolment, and find the patient it names; refused when that patient, or
    its contact, already has a live course at the clinic."""
    enrollment = validate_enrollment(raw, region=clinic.region, now=now)
    clinic_id: int = clinic.id  # type: ignore[assignment]
    [known] = known_patients(session, clinic_id=clinic_id, enrollments=[enrollment])
    if known is not None and known.live_course_id is not None:
        raise InvalidInput.one(known.by, ALREADY_ENROLLED)
    phones, emails = live_contacts(
        session,
        clinic_id=clinic_id,
        phones=[enrollment.phone] if enrollment.phone else [],
        emails=[enrollment.email] if enrollment.email else [],
    )
    conflict = enrollment_conflict(enrollment, phones=phones, emails=emails)
    if conflict is not None:
        raise InvalidInput([conflict])
    return enrollment, known


def enroll(
    session: Session,
    *,
    clinic: Clinic,
    raw: Mapping[str, Any],
    source: str,
    ctx: Context,
) -> tuple[Patient, Course]:
    """Enroll a patient with a course (a new course when the clinic has the patient already),
    record their consent, and plan the first messages.

    A number or an address that opted out in another enrolment (at any clinic) stays opted
    out: its channel is planned nothing until the patient opts in again.
    """
    data, known = check_enrollment(session, clinic=clinic, raw=raw, now=ctx.now)
    [(patient_id, course_id)] = create_enrollments(
        session,
        clinic=clinic,
        enrollments=[data],
        known=[known.patient_id if known else None],
        source=source,
        now=ctx.now,
    )
    patient, course = session.get(Patient, patient_id), session.get(Course, course_id)
    assert patient is not None and course is not None
    materialize(session, course=course, careplan=ctx.careplan, now=ctx.now, horizon=ctx.horizon)
    return patient, course


def _patient_values(data: Enrollment) -> dict[str, Any]:
    values: dict[str, Any] = {
        "first_name": data.first_name,
        "last_name": data.last_name,
        "phone": data.phone,
        "email": data.email,
        "channel": data.channel,
        "timezone": data.timezone,
        "locale": data.locale,
        "ipledge": data.ipledge,
    }
    # A returning patient keeps what the new enrolment leaves out.
    if data.date_of_birth is not None:
        values["date_of_birth"] = data.date_of_birth
    if data.external_id is not None:
        values["external_id"] = data.external_id
    return values


def create_enrollments(
    session: Session,
    *,
    clinic: Clinic,
    enrollments: Sequence[Enrollment],
    source: str,
    now: datetime,
    known: Sequence[int | None] | None = None,
) -> list[tuple[int, int]]:
    """Write checked enrolments: the patients, their consent, their courses (not planned yet).

    `known` gives, for each enrolment, the id of the clinic's patient it names (None: a new
    patient); that patient's details become the enrolment's and the course is added to them.
    A few statements for any number of new patients (a spreadsheet of thousands writes in
    batches of this); returns (patient id, course id) in the order given. A number or
    address that opted out in another enrolment stays opted out (carry_opt_outs).
    """
    known = list(known) if known is not None else [None] * len(enrollments)
    new = [data for data, patient_id in zip(enrollments, known, strict=True) if patient_id is None]
    patients = [
        {
            "clinic_id": clinic.id,
            "public_id": uuid.uuid4().hex,
            "date_of_birth": None,
            "external_id": None,
            **_patient_values(data),
            "consent_at": now,
            "consent_source": source,
            "sms_opted_out": False,
            "email_opted_out": False,
            "created_at": now,
        }
        for data in new
    ]
    new_ids = iter(_insert(session, Patient, patients) if patients else [])
    patient_ids = [patient_id if patient_id is not None else next(new_ids) for patient_id in known]
    returning = {patient_id for patient_id in known if patient_id is not None}
    stopped: dict[int, Patient] = {}
    for patient_id, data in zip(patient_ids, enrollments, strict=True):
        if patient_id in returning:
            patient = session.get(Patient, patient_id)
            assert patient is not None
            for name, value in _patient_values(data).items():
                setattr(patient, name, value)
            session.add(patient)
            stopped[patient_id] = patient
    session.flush()
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
        # A returning patient's opt-out stays: only the patient can opt back in.
        if patient_id not in stopped or not opted_out(stopped[patient_id], channel)
    ]
    if consents:
        session.execute(insert(ConsentEvent), consents)
    for patient in stopped.values():
        carry_opt_outs(session, patient=patient, now=now)
    _carry_opt_outs(session, [i for i in patient_ids if i not in returning], new, now=now)
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
    """carry_opt_outs for the new patients whose phone or email opted out elsewhere: one query
    finds them, so a large import pays for the few, not for every row."""
    phones = {data.phone for data in enrollments if data.phone}
    emails = {data.email for data in enrollments if data.email}
    if not phones and not emails:
        return
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


def remove_enrollments(session: Session, *, patient_ids: list[int], course_ids: list[int]) -> None:
    """Delete enrolments made moments ago that are being undone: their courses, and the
    patients among `patient_ids` (new ones) with their consent. Only for enrolments never
    planned: nothing was sent to them."""
    session.execute(delete(CourseEvent).where(col(CourseEvent.course_id).in_(course_ids)))
    session.execute(delete(Course).where(col(Course.id).in_(course_ids)))
    session.execute(delete(ConsentEvent).where(col(ConsentEvent.patient_id).in_(patient_ids)))
    session.execute(delete(Patient).where(col(Patient.id).in_(patient_ids)))
