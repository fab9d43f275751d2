"""The service layer: every change a clinic, a patient or the worker makes, in one place.

The CLI and the API call these keyword-only functions inside one transaction each; a
function either applies its whole change or raises before writing anything.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, select

from reminders.careplan import CarePlan
from reminders.models import (
    Channel,
    ChannelChoice,
    Clinic,
    ConsentEvent,
    Course,
    CourseEvent,
    CourseStatus,
    MessageStatus,
    Patient,
)
from reminders.outbox import cancel_pending, materialize, zone
from reminders.planning import PREGNANCY_TEST
from reminders.timing import is_quiet, to_local
from reminders.validation import (
    Enrollment,
    FieldError,
    InvalidInput,
    parse_date,
    parse_timezone,
    validate_enrollment,
)

LIVE_STATUSES = (CourseStatus.active.value, CourseStatus.paused.value)
EVENT_TYPES = (PREGNANCY_TEST,)


class NotFound(LookupError):
    """No such record in this clinic."""


class Conflict(ValueError):
    """The change contradicts the record's state (e.g. resuming a cancelled course)."""


@dataclass(frozen=True)
class Context:
    """What every service call needs besides its own arguments."""

    careplan: CarePlan
    now: datetime
    horizon: timedelta = timedelta(days=7)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """A fresh API key and the hash that is stored in its place."""
    key = "rk_" + secrets.token_urlsafe(32)
    return key, hash_api_key(key)


def _parse_time(field: str, value: str | time) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise InvalidInput.one(field, f"{value!r} is not a time (use HH:MM)") from None


def create_clinic(
    session: Session,
    *,
    name: str,
    timezone: str = "America/New_York",
    region: str = "US",
    help_contact: str = "",
    send_time: str | time = "10:00",
    quiet_start: str | time = "21:00",
    quiet_end: str | time = "08:00",
    ipledge: bool = True,
    now: datetime,
) -> tuple[Clinic, str]:
    """Create a clinic; returns it and its API key (shown once, stored only as a hash)."""
    import phonenumbers

    errors: list[FieldError] = []
    name = name.strip()
    if not name or len(name) > 120:
        errors.append(FieldError("name", "required, at most 120 characters"))
    try:
        parse_timezone(timezone)
    except ValueError as exc:
        errors.append(FieldError("tz", str(exc)))
    region = region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        errors.append(FieldError("region", f"{region!r} is not a known region code"))
    if errors:
        raise InvalidInput(errors)
    send, q_start, q_end = (
        _parse_time("send_time", send_time),
        _parse_time("quiet_start", quiet_start),
        _parse_time("quiet_end", quiet_end),
    )
    # Quiet hours may only be narrowed from 21:00-08:00, never widened into the night.
    if q_start > time(21, 0) or q_start < q_end or q_end < time(8, 0):
        raise InvalidInput.one("quiet_start", "quiet hours must cover at least 21:00-08:00")
    if is_quiet(send, quiet_start=q_start, quiet_end=q_end):
        raise InvalidInput.one("send_time", f"{send} falls inside quiet hours")
    key, key_hash = new_api_key()
    clinic = Clinic(
        name=name,
        timezone=timezone,
        region=region,
        help_contact=help_contact.strip(),
        send_time=send,
        quiet_start=q_start,
        quiet_end=q_end,
        ipledge_enabled=ipledge,
        api_key_hash=key_hash,
        created_at=now,
    )
    session.add(clinic)
    session.flush()
    return clinic, key


def rotate_api_key(session: Session, *, clinic_id: int) -> str:
    clinic = get_clinic(session, clinic_id)
    key, clinic.api_key_hash = new_api_key()
    session.add(clinic)
    return key


def get_clinic(session: Session, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"clinic {clinic_id} not found")
    return clinic


def clinic_by_api_key(session: Session, key: str) -> Clinic | None:
    return session.exec(select(Clinic).where(Clinic.api_key_hash == hash_api_key(key))).first()


def check_enrollment(
    session: Session, *, clinic: Clinic, raw: Mapping[str, Any], today: date
) -> Enrollment:
    """Validate an enrolment, including that the contact has no live course at the clinic."""
    enrollment = validate_enrollment(raw, region=clinic.region, today=today)
    contacts = []
    if enrollment.phone:
        contacts.append(Patient.phone == enrollment.phone)
    if enrollment.email:
        contacts.append(Patient.email == enrollment.email)
    duplicate = session.exec(
        select(Patient)
        .join(Course, Course.patient_id == Patient.id)  # type: ignore[arg-type]
        .where(Patient.clinic_id == clinic.id, or_(*contacts))
        .where(Course.status.in_(LIVE_STATUSES))  # type: ignore[attr-defined]
    ).first()
    if duplicate is not None:
        field = "phone" if enrollment.phone and duplicate.phone == enrollment.phone else "email"
        raise InvalidInput.one(field, "already enrolled in an active course at this clinic")
    return enrollment


def enroll(
    session: Session,
    *,
    clinic: Clinic,
    raw: Mapping[str, Any],
    source: str,
    ctx: Context,
) -> tuple[Patient, Course]:
    """Enroll a patient with a course, record their consent, and plan the first messages."""
    today = to_local(ctx.now, zone(clinic.timezone)).date()
    data = check_enrollment(session, clinic=clinic, raw=raw, today=today)
    patient = Patient(
        clinic_id=clinic.id,  # type: ignore[arg-type]
        first_name=data.first_name,
        phone=data.phone,
        email=data.email,
        channel=ChannelChoice(data.channel),
        timezone=data.timezone,
        locale=data.locale,
        ipledge=data.ipledge,
        consent_at=ctx.now,
        consent_source=source,
        created_at=ctx.now,
    )
    session.add(patient)
    session.flush()
    for channel in _chosen(patient):
        record_consent(
            session, patient=patient, channel=channel, opt_in=True, source=source, now=ctx.now
        )
    course = Course(
        patient_id=patient.id,  # type: ignore[arg-type]
        start_date=data.start_date,
        weeks=data.weeks,
        plan_from=ctx.now,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(course)
    session.flush()
    materialize(session, course=course, careplan=ctx.careplan, now=ctx.now, horizon=ctx.horizon)
    return patient, course


def _chosen(patient: Patient) -> list[Channel]:
    choice = ChannelChoice(patient.channel)
    if choice == ChannelChoice.both:
        return [Channel.sms, Channel.email]
    return [Channel(choice.value)]


def record_consent(
    session: Session,
    *,
    patient: Patient,
    channel: Channel,
    opt_in: bool,
    source: str,
    now: datetime,
    detail: str = "",
) -> ConsentEvent:
    """Append to the consent ledger and update the patient's derived state with it."""
    event = ConsentEvent(
        patient_id=patient.id,  # type: ignore[arg-type]
        channel=channel,
        action="opt_in" if opt_in else "opt_out",
        source=source,
        detail=detail[:200],
        at=now,
    )
    session.add(event)
    if channel == Channel.sms:
        patient.sms_opted_out = not opt_in
    else:
        patient.email_opted_out = not opt_in
    session.add(patient)
    return event


def opt_out(
    session: Session,
    *,
    patient: Patient,
    channel: Channel,
    source: str,
    now: datetime,
    detail: str = "",
) -> int:
    """Stop a channel for a patient at once: record it and suppress every pending message."""
    record_consent(
        session,
        patient=patient,
        channel=channel,
        opt_in=False,
        source=source,
        now=now,
        detail=detail,
    )
    return cancel_pending(
        session,
        patient_id=patient.id,
        channel=channel,
        now=now,
        reason=f"opted out ({source})",
        status=MessageStatus.suppressed,
    )


def opt_in(
    session: Session, *, patient: Patient, channel: Channel, source: str, ctx: Context
) -> None:
    """Resume a channel and plan its upcoming messages again."""
    record_consent(
        session, patient=patient, channel=channel, opt_in=True, source=source, now=ctx.now
    )
    session.flush()
    for course in live_courses(session, patient_id=patient.id):  # type: ignore[arg-type]
        replan(session, course=course, ctx=ctx)


def live_courses(session: Session, *, patient_id: int) -> list[Course]:
    return list(
        session.exec(
            select(Course).where(
                Course.patient_id == patient_id,
                Course.status == CourseStatus.active.value,
            )
        ).all()
    )


def replan(session: Session, *, course: Course, ctx: Context) -> None:
    materialize(session, course=course, careplan=ctx.careplan, now=ctx.now, horizon=ctx.horizon)


def get_course(session: Session, *, course_id: int, clinic_id: int | None = None) -> Course:
    """A course, only if it belongs to `clinic_id` when one is given."""
    course = session.get(Course, course_id)
    if course is not None and clinic_id is not None:
        patient = session.get(Patient, course.patient_id)
        if patient is None or patient.clinic_id != clinic_id:
            course = None
    if course is None:
        raise NotFound(f"course {course_id} not found")
    return course


def pause_course(session: Session, *, course: Course, ctx: Context) -> Course:
    """Pause: pending messages are cancelled and nothing is planned until resumed."""
    if course.status != CourseStatus.active:
        raise Conflict(f"status: course is {course.status}, only an active course pauses")
    _set_status(session, course, CourseStatus.paused, ctx.now)
    cancel_pending(session, course_id=course.id, now=ctx.now, reason="course paused")
    return course


def resume_course(session: Session, *, course: Course, ctx: Context) -> Course:
    """Resume: plan again from now; what fell due during the pause is not sent late."""
    if course.status != CourseStatus.paused:
        raise Conflict(f"status: course is {course.status}, only a paused course resumes")
    _set_status(session, course, CourseStatus.active, ctx.now)
    course.plan_from = ctx.now
    replan(session, course=course, ctx=ctx)
    return course


def stop_course(session: Session, *, course: Course, ctx: Context) -> Course:
    """Stop for good: every pending message is cancelled."""
    if course.status not in (CourseStatus.active, CourseStatus.paused):
        raise Conflict(f"status: course is already {course.status}")
    _set_status(session, course, CourseStatus.cancelled, ctx.now)
    cancel_pending(session, course_id=course.id, now=ctx.now, reason="course stopped")
    return course


def end_course(session: Session, *, course: Course, last_dose_date: Any, ctx: Context) -> Course:
    """Record the last dose: after-course messages are planned from it."""
    try:
        last_dose = parse_date(last_dose_date)
    except ValueError as exc:
        raise InvalidInput.one("last_dose_date", str(exc)) from None
    if last_dose < course.start_date:
        raise InvalidInput.one("last_dose_date", "is before the course start date")
    if course.status not in (CourseStatus.active, CourseStatus.completed):
        raise Conflict(f"status: course is {course.status}")
    course.last_dose_date = last_dose
    _set_status(session, course, CourseStatus.active, ctx.now)
    replan(session, course=course, ctx=ctx)
    return course


def change_course(
    session: Session,
    *,
    course: Course,
    ctx: Context,
    start_date: Any = None,
    weeks: Any = None,
) -> Course:
    """Move the start date or the planned length; only pending messages are re-planned."""
    from reminders.validation import parse_weeks

    patient = session.get(Patient, course.patient_id)
    assert patient is not None
    errors: list[FieldError] = []
    if start_date is not None:
        try:
            new_start = parse_date(start_date)
            today = to_local(ctx.now, zone(patient.timezone)).date()
            if abs(new_start - today) > timedelta(days=365):
                raise ValueError(f"{new_start} is more than a year from today")
            course.start_date = new_start
        except ValueError as exc:
            errors.append(FieldError("start_date", str(exc)))
    if weeks is not None:
        try:
            course.weeks = parse_weeks(weeks)
        except ValueError as exc:
            errors.append(FieldError("weeks", str(exc)))
    if errors:
        raise InvalidInput(errors)
    if course.status in (CourseStatus.cancelled,):
        raise Conflict("status: course is cancelled")
    course.updated_at = ctx.now
    session.add(course)
    replan(session, course=course, ctx=ctx)
    return course


def record_event(
    session: Session, *, course: Course, type: str, on: Any, ctx: Context
) -> CourseEvent:
    """Record a course event (a pregnancy test on a date starts the iPLEDGE countdown)."""
    if type not in EVENT_TYPES:
        raise InvalidInput.one("type", f"{type!r} is not one of {', '.join(EVENT_TYPES)}")
    try:
        day = parse_date(on)
    except ValueError as exc:
        raise InvalidInput.one("date", str(exc)) from None
    patient = session.get(Patient, course.patient_id)
    assert patient is not None
    today = to_local(ctx.now, zone(patient.timezone)).date()
    if day > today:
        raise InvalidInput.one("date", f"{day} is in the future")
    if day < today - timedelta(days=30):
        raise InvalidInput.one("date", f"{day} is more than 30 days ago")
    existing = session.exec(
        select(CourseEvent).where(
            CourseEvent.course_id == course.id, CourseEvent.type == type, CourseEvent.date == day
        )
    ).first()
    if existing is not None:
        return existing
    event = CourseEvent(course_id=course.id, type=type, date=day, created_at=ctx.now)  # type: ignore[arg-type]
    session.add(event)
    session.flush()
    replan(session, course=course, ctx=ctx)
    return event


def _set_status(session: Session, course: Course, status: CourseStatus, now: datetime) -> None:
    course.status = status
    course.updated_at = now
    session.add(course)


def plan_all(session: Session, *, ctx: Context, batch: int = 500) -> int:
    """Materialize the coming messages of every active course; returns the rows written."""
    written = 0
    last_id = 0
    while True:
        courses = session.exec(
            select(Course)
            .where(Course.status == CourseStatus.active.value, Course.id > last_id)  # type: ignore[operator]
            .order_by(Course.id)  # type: ignore[arg-type]
            .limit(batch)
        ).all()
        if not courses:
            return written
        for course in courses:
            written += materialize(
                session, course=course, careplan=ctx.careplan, now=ctx.now, horizon=ctx.horizon
            ).written
        last_id = courses[-1].id  # type: ignore[assignment]
        session.commit()
