"""Course actions: pause, resume, stop, end, move, record an event; and the planner pass."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import Session, col, select

from reminders.db import is_postgres
from reminders.lifecycle import cancel_pending
from reminders.models import (
    Course,
    CourseEvent,
    CourseStatus,
    Patient,
)
from reminders.outbox import materialize, materialize_many
from reminders.planning import PREGNANCY_TEST
from reminders.services.common import Conflict, Context, NotFound
from reminders.timing import local_today
from reminders.validation import (
    FieldError,
    InvalidInput,
    parse_date,
    parse_date_near,
    parse_weeks,
)

EVENT_TYPES = (PREGNANCY_TEST,)


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
        raise Conflict("status", f"course is {course.status}, only an active course pauses")
    _set_status(session, course, CourseStatus.paused, ctx.now)
    cancel_pending(session, course_id=course.id, now=ctx.now, reason="course paused")
    return course


def resume_course(session: Session, *, course: Course, ctx: Context) -> Course:
    """Resume: plan again from now; what fell due during the pause is not sent late."""
    if course.status != CourseStatus.paused:
        raise Conflict("status", f"course is {course.status}, only a paused course resumes")
    _set_status(session, course, CourseStatus.active, ctx.now)
    course.plan_from = ctx.now
    replan(session, course=course, ctx=ctx)
    return course


def stop_course(session: Session, *, course: Course, ctx: Context) -> Course:
    """Stop for good: every pending message is cancelled."""
    if course.status not in (CourseStatus.active, CourseStatus.paused):
        raise Conflict("status", f"course is already {course.status}")
    _set_status(session, course, CourseStatus.cancelled, ctx.now)
    cancel_pending(session, course_id=course.id, now=ctx.now, reason="course stopped")
    return course


def end_course(session: Session, *, course: Course, last_dose_date: Any, ctx: Context) -> Course:
    """Record the last dose: after-course messages are planned from it."""
    today = _patient_today(session, course, ctx)
    try:
        last_dose = parse_date_near(last_dose_date, today=today)
    except ValueError as exc:
        raise InvalidInput.one("last_dose_date", str(exc)) from None
    if last_dose < course.start_date:
        raise InvalidInput.one("last_dose_date", "is before the course start date")
    if course.status not in (CourseStatus.active, CourseStatus.completed):
        raise Conflict("status", f"course is {course.status}")
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
    errors: list[FieldError] = []
    if start_date is not None:
        try:
            course.start_date = parse_date_near(
                start_date, today=_patient_today(session, course, ctx)
            )
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
        raise Conflict("status", "course is cancelled")
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
    today = _patient_today(session, course, ctx)
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


# From this long before the planned end, a course without a recorded last dose asks the
# clinic to confirm the last dose or extend the course; the patient is told nothing of the end.
CONFIRM_BEFORE = timedelta(days=7)


def end_to_confirm(course: Course, *, today: date) -> bool:
    """Whether staff must confirm the last dose or extend: active, no last dose, near the end."""
    planned_end = course.start_date + timedelta(weeks=course.weeks)
    return (
        course.status == CourseStatus.active
        and course.last_dose_date is None
        and today >= planned_end - CONFIRM_BEFORE
    )


def _planned_end(session: Session) -> ColumnElement[Any]:
    """A course's planned end (start + weeks) in SQL, on either database."""
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        return col(Course.start_date) + col(Course.weeks) * 7  # date + integer is a date
    # SQLite keeps dates as ISO text, which compares in date order.
    return func.date(col(Course.start_date), func.printf("+%d days", col(Course.weeks) * 7))


def courses_to_confirm(
    session: Session, *, now: datetime, clinic_id: int | None = None
) -> list[tuple[Course, Patient]]:
    """Active courses within a week of their planned end (or past it) with no last dose."""
    # Every zone's today is at most UTC's tomorrow: the SQL bound is loose, the check exact.
    bound = now.date() + timedelta(days=1) + CONFIRM_BEFORE
    query = (
        select(Course, Patient)
        .join(Patient, col(Patient.id) == Course.patient_id)
        .where(Course.status == CourseStatus.active.value, col(Course.last_dose_date).is_(None))
        .where(_planned_end(session) <= bound)
        .order_by(col(Course.start_date), col(Course.id))
    )
    if clinic_id is not None:
        query = query.where(Patient.clinic_id == clinic_id)
    return [
        (course, patient)
        for course, patient in session.exec(query).all()
        if end_to_confirm(course, today=local_today(now, patient.timezone))
    ]


def _patient_today(session: Session, course: Course, ctx: Context) -> date:
    """Today in the patient's own time zone: dates staff give are the patient's dates."""
    patient = session.get(Patient, course.patient_id)
    assert patient is not None
    return local_today(ctx.now, patient.timezone)


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
        ids: list[int] = session.exec(
            select(col(Course.id))
            .where(Course.status == CourseStatus.active.value, col(Course.id) > last_id)
            .where(or_(col(Course.planned_until).is_(None), col(Course.planned_until) < due))
            .order_by(col(Course.id))
            .limit(batch)
        ).all()  # type: ignore[assignment]  # the primary key is never None in a row
        if not ids:
            return written
        written += materialize_many(
            session, course_ids=ids, careplan=ctx.careplan, now=ctx.now, horizon=ctx.horizon
        )
        last_id = ids[-1]
        session.commit()
