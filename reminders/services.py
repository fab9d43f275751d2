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

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from reminders.careplan import CarePlan
from reminders.inbound import Keyword, classify
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
)
from reminders.outbox import cancel_pending, materialize, materialize_many, zone
from reminders.planning import PREGNANCY_TEST
from reminders.render import LOCALES
from reminders.timing import is_quiet, to_local
from reminders.validation import (
    CHANNELS,
    Enrollment,
    FieldError,
    InvalidInput,
    parse_date,
    parse_email,
    parse_phone,
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
    if not (time(8, 0) <= q_end < q_start <= time(21, 0)):
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
        contacts.append(col(Patient.phone) == enrollment.phone)
    if enrollment.email:
        contacts.append(col(Patient.email) == enrollment.email)
    duplicate = session.exec(
        select(Patient)
        .join(Course, col(Course.patient_id) == Patient.id)
        .where(Patient.clinic_id == clinic.id, or_(*contacts))
        .where(col(Course.status).in_(LIVE_STATUSES))
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
    """Resume a channel and plan its upcoming messages again (not those that fell due meanwhile)."""
    _reopen_suppressed(session, patient=patient, channel=channel, now=ctx.now)
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
    if last_dose > to_local(ctx.now, zone("UTC")).date() + timedelta(days=365):
        raise InvalidInput.one("last_dose_date", f"{last_dose} is more than a year from today")
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
    """Materialize the coming messages of every active course whose outbox runs short.

    A course is planned again when less than a day of its horizon is left (or never was);
    changes to a course re-plan it at once, so this pass only has to move the horizon.
    """
    due = ctx.now + ctx.horizon - timedelta(days=1)
    written = 0
    last_id = 0
    while True:
        courses = session.exec(
            select(Course)
            .where(Course.status == CourseStatus.active.value, col(Course.id) > last_id)
            .where(or_(col(Course.planned_until).is_(None), col(Course.planned_until) < due))
            .order_by(col(Course.id))
            .limit(batch)
        ).all()
        if not courses:
            return written
        written += materialize_many(
            session, courses=courses, careplan=ctx.careplan, now=ctx.now, horizon=ctx.horizon
        )
        last_id = courses[-1].id  # type: ignore[assignment]
        session.commit()


# Clinic API reads and changes, patients' replies and the provider's delivery reports.

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


def list_patients(
    session: Session,
    *,
    clinic_id: int | None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[Patient, Course]], int]:
    """A page of the clinic's patients with their latest course, and the total that match."""
    if status is not None and status not in {s.value for s in CourseStatus}:
        raise InvalidInput.one("status", f"{status!r} is not a course status")
    latest = (
        select(func.max(Course.id))
        .where(Course.patient_id == Patient.id)
        .correlate(Patient)
        .scalar_subquery()
    )
    query = (
        select(Patient, Course)
        .join(Course, col(Course.id) == latest)
        .where(Patient.clinic_id == clinic_id)
    )
    if status is not None:
        query = query.where(Course.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Patient.id)).offset(offset).limit(limit)).all()
    return [(patient, course) for patient, course in rows], total


def _check_patient_changes(
    session: Session, *, patient: Patient, clinic: Clinic, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """The patient's fields after `changes`, each checked like an enrolment's."""
    errors = [
        FieldError(name, "unknown field") for name in sorted(set(changes) - set(PATIENT_FIELDS))
    ]
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
                errors.append(
                    FieldError(name, "already enrolled in an active course at this clinic")
                )
    if errors:
        raise InvalidInput(errors)
    return values


def update_patient(
    session: Session, *, patient: Patient, changes: Mapping[str, Any], source: str, ctx: Context
) -> Patient:
    """Change a patient's contact, channel, zone or locale; pending messages are re-planned.

    A channel the patient opted out of (STOP, an unsubscribe link) cannot be switched back on
    by staff: only the patient can opt in again.
    """
    clinic = get_clinic(session, patient.clinic_id)
    values = _check_patient_changes(session, patient=patient, clinic=clinic, changes=changes)
    before = set(_chosen(patient))
    choice = ChannelChoice(values["channel"])
    after = (
        {Channel.sms, Channel.email} if choice == ChannelChoice.both else {Channel(choice.value)}
    )
    opted_out = {Channel.sms: patient.sms_opted_out, Channel.email: patient.email_opted_out}
    for added in sorted(after - before):
        if opted_out[added]:
            raise Conflict(f"channel: the patient opted out of {added}; only they can opt back in")
    for name, value in values.items():
        setattr(patient, name, value)
    patient.channel = choice
    session.add(patient)
    for added in sorted(after - before):
        record_consent(
            session, patient=patient, channel=added, opt_in=True, source=source, now=ctx.now
        )
    for removed in sorted(before - after):
        cancel_pending(
            session, patient_id=patient.id, channel=removed, now=ctx.now, reason="channel changed"
        )
    session.flush()
    for course in live_courses(session, patient_id=patient.id):  # type: ignore[arg-type]
        replan(session, course=course, ctx=ctx)
    return patient


def consent_history(session: Session, *, patient_id: int) -> list[ConsentEvent]:
    """The patient's consent ledger, oldest first."""
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.patient_id == patient_id)
            .order_by(col(ConsentEvent.at), col(ConsentEvent.id))
        ).all()
    )


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


@dataclass(frozen=True)
class InboundOutcome:
    """What a patient's text did, for the reply: keyword, clinics concerned, whether it changed."""

    keyword: str  # inbound.Keyword
    clinics: list[Clinic]  # each clinic the number is enrolled at, latest enrolment first
    locale: str
    changed: bool  # STOP: newly opted out; START: newly opted in
    opted_out: bool  # the number now receives no SMS from any clinic


def receive_text(
    session: Session,
    *,
    phone: str,
    body: str,
    provider_id: str | None,
    ctx: Context,
    opt_out_type: str | None = None,
) -> InboundOutcome | None:
    """Apply a patient's text at every clinic where the number is enrolled; None if nowhere.

    STOP opts every enrolment of the number out of SMS (the service sends from one number for
    all clinics, so a STOP to it covers them all); START opts back in and re-plans. Each text
    is recorded once per clinic for staff; a repeated webhook (same provider id) changes
    nothing twice, since opting out or in again is skipped when already done.
    """
    patients = list(
        session.exec(
            select(Patient).where(Patient.phone == phone).order_by(col(Patient.id).desc())
        ).all()
    )
    if not patients:
        return None
    keyword = classify(body, opt_out_type=opt_out_type)
    changed = False
    for patient in patients:
        if keyword == Keyword.stop and not patient.sms_opted_out:
            opt_out(session, patient=patient, channel=Channel.sms, source="reply", now=ctx.now)
            changed = True
        elif keyword == Keyword.start and patient.sms_opted_out:
            opt_in(session, patient=patient, channel=Channel.sms, source="reply", ctx=ctx)
            changed = True
    latest: dict[int, Patient] = {}
    for patient in patients:
        latest.setdefault(patient.clinic_id, patient)
    text = body.replace("\x00", "")
    for patient in latest.values():
        seen = (
            provider_id is not None
            and session.exec(
                select(InboundMessage.id).where(
                    InboundMessage.patient_id == patient.id,
                    InboundMessage.provider_id == provider_id,
                )
            ).first()
        )
        if not seen:
            session.add(
                InboundMessage(
                    clinic_id=patient.clinic_id,
                    patient_id=patient.id,  # type: ignore[arg-type]
                    keyword=keyword.value,
                    body=text,
                    provider_id=provider_id,
                    received_at=ctx.now,
                )
            )
    session.flush()
    return InboundOutcome(
        keyword=keyword.value,
        clinics=[get_clinic(session, clinic_id) for clinic_id in latest],
        locale=patients[0].locale,
        changed=changed,
        opted_out=all(patient.sms_opted_out for patient in patients),
    )


def _reopen_suppressed(
    session: Session, *, patient: Patient, channel: Channel, now: datetime
) -> int:
    """Make the not-yet-due rows an opt-out suppressed plannable again (as cancelled rows).

    Suppressed rows are history to the planner; on opting back in, those still ahead are
    owed again, so the re-plan that follows turns the ones still in the plan back to
    pending. What fell due while opted out stays suppressed: it is not sent late.
    """
    statement = (
        update(Message)
        .where(
            col(Message.patient_id) == patient.id,
            col(Message.channel) == channel.value,
            col(Message.status) == MessageStatus.suppressed.value,
            col(Message.due_at) >= now,
        )
        .values(status=MessageStatus.cancelled.value, last_error="opted in again", updated_at=now)
    )
    return session.exec(statement).rowcount or 0


# Twilio's status callback values, mapped onto the outbox. queued, accepted, scheduled and
# sending only say Twilio holds the message: the worker records `sent` itself.
PROVIDER_STATUSES = {
    "sent": MessageStatus.sent,
    "delivered": MessageStatus.delivered,
    "read": MessageStatus.delivered,
    "undelivered": MessageStatus.undelivered,
    "failed": MessageStatus.failed,
    "canceled": MessageStatus.failed,
}
PROVIDER_IN_FLIGHT = frozenset({"queued", "accepted", "scheduled", "sending"})
# A report moves a row only to a higher rank, so replays and late arrivals never go backwards.
# Rows suppressed, expired or cancelled by us are history and are not in the ranks.
_DELIVERY_RANK = {
    MessageStatus.pending: 0,
    MessageStatus.sending: 1,
    MessageStatus.unknown: 1,
    MessageStatus.sent: 2,
    MessageStatus.delivered: 3,
    MessageStatus.undelivered: 3,
    MessageStatus.failed: 3,
}
# Carrier-side reasons an accepted SMS did not arrive.
UNDELIVERED_CODES = {
    30003: "unreachable handset",
    30004: "message blocked",
    30005: "unknown handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
    30008: "unknown error",
}
RECIPIENT_UNSUBSCRIBED = 21610


def delivery_error(status: str, code: int | None) -> str:
    """The last_error text for a failed delivery, naming the provider's code."""
    if code is None:
        return f"twilio: {status}"
    label = UNDELIVERED_CODES.get(code)
    if code == RECIPIENT_UNSUBSCRIBED:
        label = "recipient unsubscribed"
    return f"twilio {code}: {label}" if label else f"twilio {code}: {status}"


def record_delivery(
    session: Session,
    *,
    outbox_id: int,
    provider_id: str | None,
    status: str,
    error_code: int | None,
    now: datetime,
) -> bool:
    """Apply one delivery report to an outbox row; True when the row changed.

    One conditional UPDATE: the row moves only from a lower rank, and only when the report is
    for the row's own send (a row sent again after a worker died has a new provider id).
    A report that arrives while the worker still holds the row (`sending`) settles it; the
    worker's own write then finds the row gone and leaves it as reported.
    """
    row = session.get(Message, outbox_id)
    if row is None:
        raise NotFound(f"outbox {outbox_id} not found")
    word = status.strip().lower()
    if word in PROVIDER_IN_FLIGHT:
        return False
    target = PROVIDER_STATUSES.get(word)
    if target is None:
        raise InvalidInput.one("MessageStatus", f"{status!r} is not a Twilio message status")
    lower = [s.value for s, rank in _DELIVERY_RANK.items() if rank < _DELIVERY_RANK[target]]
    values: dict[str, Any] = {
        "status": target.value,
        "updated_at": now,
        "claim_token": None,
        "lease_until": None,
        "sent_at": func.coalesce(Message.sent_at, now),
    }
    statement = update(Message).where(col(Message.id) == outbox_id, col(Message.status).in_(lower))
    if provider_id:
        values["provider_id"] = func.coalesce(Message.provider_id, provider_id)
        statement = statement.where(
            or_(col(Message.provider_id).is_(None), col(Message.provider_id) == provider_id)
        )
    if target == MessageStatus.delivered:
        values["delivered_at"] = now
    elif target in (MessageStatus.undelivered, MessageStatus.failed):
        values["last_error"] = delivery_error(word, error_code)
    changed = (session.exec(statement.values(**values)).rowcount or 0) == 1
    if changed and error_code == RECIPIENT_UNSUBSCRIBED:
        # Twilio's 21610 is the recipient's STOP, reported late: honour it like one.
        patient = session.get(Patient, row.patient_id)
        if patient is not None and not patient.sms_opted_out:
            opt_out(
                session,
                patient=patient,
                channel=Channel.sms,
                source="provider",
                now=now,
                detail=delivery_error(word, error_code),
            )
    return changed


def patient_by_public_id(session: Session, public_id: str) -> Patient | None:
    """The patient an unsubscribe link names, by the opaque id inside its token."""
    return session.exec(select(Patient).where(Patient.public_id == public_id)).first()


def unsubscribe_email(session: Session, *, patient: Patient, now: datetime) -> bool:
    """Opt a patient out of email from their link; recorded once, however often it is used."""
    if patient.email_opted_out:
        return False
    opt_out(session, patient=patient, channel=Channel.email, source="link", now=now)
    return True
