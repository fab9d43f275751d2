"""Writes the plan into the outbox: an idempotent upsert, safe in any number of planners."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from reminders import lifecycle
from reminders.careplan import CarePlan
from reminders.models import (
    SENT_STATUSES,
    Channel,
    ChannelChoice,
    Clinic,
    Course,
    CourseEvent,
    CourseStatus,
    Message,
    MessageStatus,
    Patient,
)
from reminders.planning import (
    PREGNANCY_TEST,
    CourseFacts,
    History,
    Plan,
    PregnancyTest,
    Rules,
    plan_course,
)
from reminders.timing import as_utc, to_local, zone

OPEN_STATUSES = (MessageStatus.pending.value, MessageStatus.cancelled.value)


def rules_for(clinic: Clinic, patient: Patient) -> Rules:
    return Rules(
        timezone=zone(patient.timezone),
        send_time=clinic.send_time,
        quiet_start=clinic.quiet_start,
        quiet_end=clinic.quiet_end,
        ipledge=patient.ipledge and clinic.ipledge_enabled,
        lab_reminders=clinic.lab_reminders,
    )


def facts_for(course: Course, events: Sequence[CourseEvent], timezone: str) -> CourseFacts:
    """What planning reads of a course; events are dated in the patient's zone `timezone`."""
    tests = [
        PregnancyTest(taken=e.date, recorded=to_local(as_utc(e.created_at), zone(timezone)).date())
        for e in events
        if e.type == PREGNANCY_TEST
    ]
    return CourseFacts(
        start_date=course.start_date,
        weeks=course.weeks,
        last_dose_date=course.last_dose_date,
        active=course.status == CourseStatus.active,
        plan_from=course.plan_from,
        pregnancy_tests=tuple(sorted(tests, key=lambda test: test.taken)),
    )


def channels_for(patient: Patient) -> list[Channel]:
    """The channels a patient receives on now: chosen, and not opted out of."""
    wanted = ChannelChoice(patient.channel).channels
    opted_out = {Channel.sms: patient.sms_opted_out, Channel.email: patient.email_opted_out}
    return [channel for channel in wanted if not opted_out[channel]]


def history_of(rows: Sequence[Message]) -> History:
    """Rows no longer pending are history; those that reached (or may have) occupy a day."""
    done = []
    for row in rows:
        if row.status in OPEN_STATUSES:
            continue
        reached = None
        if row.status in SENT_STATUSES:
            reached = row.sent_at or row.due_at
        done.append((row.key, row.items, reached))
    return History.from_rows(done)


@dataclass(frozen=True)
class Materialized:
    plan: Plan
    written: int
    cancelled: int


def plan_for(
    session: Session, *, course: Course, careplan: CarePlan, now: datetime
) -> tuple[Plan, list[Message]]:
    """The course's plan as of `now`, and its outbox rows."""
    patient = session.get(Patient, course.patient_id)
    assert patient is not None
    clinic = session.get(Clinic, patient.clinic_id)
    assert clinic is not None
    events = session.exec(select(CourseEvent).where(CourseEvent.course_id == course.id)).all()
    rows = list(session.exec(select(Message).where(Message.course_id == course.id)).all())
    return _plan(careplan, course, patient, clinic, list(events), rows, now), rows


def _plan(
    careplan: CarePlan,
    course: Course,
    patient: Patient,
    clinic: Clinic,
    events: list[CourseEvent],
    rows: list[Message],
    now: datetime,
) -> Plan:
    return cached_plan(
        careplan,
        facts_for(course, events, patient.timezone),
        rules_for(clinic, patient),
        history_of(rows),
        now if course.plan_from is None else None,
    )


def cached_plan(
    careplan: CarePlan,
    facts: CourseFacts,
    rules: Rules,
    history: History,
    now: datetime | None,
) -> Plan:
    """plan_course, remembered: courses that start together in one zone share their plan."""
    key = (id(careplan), facts, rules, history, now)
    plan = _PLANS.get(key)
    if plan is None:
        plan = plan_course(plan=careplan, course=facts, rules=rules, history=history, now=now)  # type: ignore[arg-type]
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    return plan


# Plans are pure functions of their inputs, so a shared one is never stale; the care plan is
# keyed by identity because a process loads it once.
_PLANS: dict[tuple, Plan] = {}
_PLANS_MAX = 4096


@dataclass
class Changes:
    """What planning one course asks of the database."""

    values: list[dict]
    stale: list[int]
    completed: bool


def changes_for(
    *,
    plan: Plan,
    course: Course,
    patient: Patient,
    rows: list[Message],
    now: datetime,
    horizon: timedelta,
) -> Changes:
    """Rows to upsert (due within the horizon, or already open), rows to cancel, completion."""
    channels = channels_for(patient)
    existing = {(row.key, row.channel) for row in rows if row.status in OPEN_STATUSES}
    values = []
    for message in plan.messages:
        for channel in channels:
            if message.due_at > now + horizon and (message.key, channel) not in existing:
                continue
            values.append(
                {
                    "course_id": course.id,
                    "patient_id": patient.id,
                    "key": message.key,
                    "channel": channel.value,
                    "topics": ",".join(message.topics),
                    "items": ",".join(item.key for item in message.items),
                    "parts": json.dumps([[i.template, dict(i.params)] for i in message.items]),
                    "priority": message.priority,
                    "due_at": message.due_at,
                    "send_after": message.due_at,
                    "expires_at": message.expires_at,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    keep = {message.key for message in plan.messages}
    keep |= {row.key for row in rows if row.status not in OPEN_STATUSES}
    stale = [row.id for row in rows if row.status == MessageStatus.pending and row.key not in keep]
    completed = (
        course.last_dose_date is not None
        and course.status == CourseStatus.active
        and not plan.messages
        and not any(row.status == MessageStatus.pending for row in rows)
        # A message held for an unreachable contact may still go out once it is fixed.
        and not any(row.status == MessageStatus.held and row.expires_at > now for row in rows)
    )
    return Changes(values, stale, completed)  # type: ignore[arg-type]


def materialize(
    session: Session,
    *,
    course: Course,
    careplan: CarePlan,
    now: datetime,
    horizon: timedelta = timedelta(days=7),
) -> Materialized:
    """Upsert the course's messages due within `horizon`; cancel pending rows the plan dropped.

    Only pending (or cancelled) rows are ever rewritten, in the statement itself, so a row a
    worker claimed or sent in the meantime is never touched and never duplicated.
    """
    plan, rows = plan_for(session, course=course, careplan=careplan, now=now)
    patient = session.get(Patient, course.patient_id)
    assert patient is not None
    changes = changes_for(
        plan=plan, course=course, patient=patient, rows=rows, now=now, horizon=horizon
    )
    written = lifecycle.plan(session, changes.values) if changes.values else 0
    cancelled = 0
    if changes.stale:
        cancelled = lifecycle.cancel_pending(
            session, ids=changes.stale, now=now, reason="no longer in the plan"
        )
    course.planned_until = now + horizon
    if changes.completed:
        course.status = CourseStatus.completed
        course.updated_at = now
    session.add(course)
    return Materialized(plan, written, cancelled)


def materialize_many(
    session: Session,
    *,
    courses: Sequence[Course],
    careplan: CarePlan,
    now: datetime,
    horizon: timedelta,
) -> int:
    """materialize() for a batch of courses, with a handful of statements for all of them."""
    if not courses:
        return 0
    ids = [course.id for course in courses]
    people = {
        patient.id: (patient, clinic)
        for patient, clinic in session.execute(
            select(Patient, Clinic)
            .join(Clinic, col(Clinic.id) == Patient.clinic_id)
            .where(col(Patient.id).in_([c.patient_id for c in courses]))
        )
    }
    events: dict[int, list[CourseEvent]] = {}
    for event in session.exec(select(CourseEvent).where(col(CourseEvent.course_id).in_(ids))):
        events.setdefault(event.course_id, []).append(event)
    rows: dict[int, list[Message]] = {}
    for row in session.exec(select(Message).where(col(Message.course_id).in_(ids))):
        rows.setdefault(row.course_id, []).append(row)
    values: list[dict] = []
    stale: list[int] = []
    completed: list[int] = []
    for course in courses:
        patient, clinic = people[course.patient_id]
        own = rows.get(course.id, [])  # type: ignore[arg-type]
        plan = _plan(careplan, course, patient, clinic, events.get(course.id, []), own, now)  # type: ignore[arg-type]
        changes = changes_for(
            plan=plan, course=course, patient=patient, rows=own, now=now, horizon=horizon
        )
        values += changes.values
        stale += changes.stale
        if changes.completed:
            completed.append(course.id)  # type: ignore[arg-type]
    written = lifecycle.plan(session, values) if values else 0
    if stale:
        lifecycle.cancel_pending(session, ids=stale, now=now, reason="no longer in the plan")
    session.execute(
        update(Course).where(col(Course.id).in_(ids)).values(planned_until=now + horizon)
    )
    if completed:
        session.execute(
            update(Course)
            .where(col(Course.id).in_(completed), col(Course.status) == CourseStatus.active.value)
            .values(status=CourseStatus.completed.value, updated_at=now)
        )
    return written
