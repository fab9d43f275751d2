"""Writes the plan into the outbox: an idempotent upsert, safe in any number of planners."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, update
from sqlalchemy import select as sa_select
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


def rules_for(clinic: Clinic | Row, patient: Patient | Row) -> Rules:
    return Rules(
        timezone=zone(patient.timezone),
        send_time=clinic.send_time,
        quiet_start=clinic.quiet_start,
        quiet_end=clinic.quiet_end,
        ipledge=patient.ipledge and clinic.ipledge_enabled,
        lab_reminders=clinic.lab_reminders,
    )


def facts_for(
    course: Course | Row, events: Sequence[CourseEvent | Row], timezone: str
) -> CourseFacts:
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


def channels_for(patient: Patient | Row) -> list[Channel]:
    """The channels a patient receives on now: chosen, and not opted out of."""
    wanted = ChannelChoice(patient.channel).channels
    opted_out = {Channel.sms: patient.sms_opted_out, Channel.email: patient.email_opted_out}
    return [channel for channel in wanted if not opted_out[channel]]


def history_of(rows: Sequence[Message | Row]) -> History:
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
    session: Session,
    *,
    course: Course,
    careplan: CarePlan,
    now: datetime,
    horizon: timedelta | None = None,
) -> tuple[Plan, list[Message]]:
    """The course's plan and its outbox rows: the whole course's, or what `horizon` needs."""
    patient = session.get(Patient, course.patient_id)
    assert patient is not None
    clinic = session.get(Clinic, patient.clinic_id)
    assert clinic is not None
    events = session.exec(select(CourseEvent).where(CourseEvent.course_id == course.id)).all()
    rows = list(session.exec(select(Message).where(Message.course_id == course.id)).all())
    return _plan(careplan, course, patient, clinic, list(events), rows, now, horizon), rows


def _plan(
    careplan: CarePlan,
    course: Course | Row,
    patient: Patient | Row,
    clinic: Clinic | Row,
    events: Sequence[CourseEvent | Row],
    rows: Sequence[Message | Row],
    now: datetime,
    horizon: timedelta | None,
) -> Plan:
    """The plan as far as the horizon and every open row need it.

    A row still open whose message moved beyond the limited plan's reach asks for the whole
    course (only after a change to the course), so a limited plan never cancels what the
    whole plan would have kept.
    """
    facts = facts_for(course, events, patient.timezone)
    rules = rules_for(clinic, patient)
    history = history_of(rows)
    planned_at = now if course.plan_from is None else None
    if horizon is None:
        return cached_plan(careplan, facts, rules, history, planned_at, None)
    open_rows = [row for row in rows if row.status in OPEN_STATUSES]
    last = max([now + horizon, *(as_utc(row.due_at) for row in open_rows)])
    plan = cached_plan(
        careplan, facts, rules, history, planned_at, to_local(last, rules.timezone).date()
    )
    if plan.reach is not None and {row.key for row in open_rows} - {m.key for m in plan.messages}:
        plan = cached_plan(careplan, facts, rules, history, planned_at, None)
    return plan


def cached_plan(
    careplan: CarePlan,
    facts: CourseFacts,
    rules: Rules,
    history: History,
    now: datetime | None,
    until: date | None,
) -> Plan:
    """plan_course, remembered: courses that start together in one zone share their plan."""
    key = (id(careplan), facts, rules, history, now, until)
    plan = _PLANS.get(key)
    if plan is None:
        plan = plan_course(
            plan=careplan,
            course=facts,
            rules=rules,
            history=history,
            now=now,  # type: ignore[arg-type]  # None only when the course has its plan_from
            until=until,
        )
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
    course: Course | Row,
    patient: Patient | Row,
    rows: Sequence[Message | Row],
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
        and plan.reach is None
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
    plan, rows = plan_for(session, course=course, careplan=careplan, now=now, horizon=horizon)
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
    course_ids: Sequence[int],
    careplan: CarePlan,
    now: datetime,
    horizon: timedelta,
) -> int:
    """materialize() for a batch of courses, with a handful of statements for all of them.

    It reads plain rows, not model instances: a pass over many courses pays for what it plans.
    """
    if not course_ids:
        return 0
    ids = list(course_ids)
    courses = _rows(session, Course, Course.id, ids)
    patients = {
        row.id: row for row in _rows(session, Patient, Patient.id, [c.patient_id for c in courses])
    }
    clinics = {
        row.id: row
        for row in _rows(session, Clinic, Clinic.id, list({p.clinic_id for p in patients.values()}))
    }
    events: dict[int, list[Row]] = {}
    for event in _rows(session, CourseEvent, CourseEvent.course_id, ids):
        events.setdefault(event.course_id, []).append(event)
    rows: dict[int, list[Row]] = {}
    for row in _rows(session, Message, Message.course_id, ids):
        rows.setdefault(row.course_id, []).append(row)
    values: list[dict] = []
    stale: list[int] = []
    completed: list[int] = []
    for course in courses:
        patient = patients[course.patient_id]
        own = rows.get(course.id, [])
        plan = _plan(
            careplan,
            course,
            patient,
            clinics[patient.clinic_id],
            events.get(course.id, []),
            own,
            now,
            horizon,
        )
        changes = changes_for(
            plan=plan, course=course, patient=patient, rows=own, now=now, horizon=horizon
        )
        values += changes.values
        stale += changes.stale
        if changes.completed:
            completed.append(course.id)
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


def _rows(session: Session, model: Any, key: Any, values: list[Any]) -> Sequence[Row]:
    """The rows of `model`'s table whose `key` is one of `values`, as plain rows."""
    table = model.__table__
    return session.execute(sa_select(table).where(table.c[key.key].in_(values))).all()
