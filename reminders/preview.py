"""A course's whole timeline, rendered: what was sent and what will be."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlmodel import Session

from reminders.compose import Draft, compose
from reminders.models import Channel, ChannelChoice, Clinic, Course, MessageStatus, Patient
from reminders.outbox import channels_for, plan_for, rules_for
from reminders.planning import CourseFacts, Plan, PregnancyTest, plan_course
from reminders.render import Part
from reminders.runtime import Runtime
from reminders.services import get_course
from reminders.services.clinics import sms_name_for
from reminders.timing import local_instant, to_local, zone
from reminders.validation import InvalidInput, parse_date, parse_timezone


def _entry(
    rt: Runtime,
    draft: Draft,
    *,
    clinic: Clinic,
    patient: Patient,
    topics: list[str],
    due_at: datetime,
    status: str,
    first: bool,
) -> dict[str, Any]:
    message = compose(
        draft,
        patient=patient,
        clinic=clinic,
        first=first and draft.channel == Channel.sms,
        now=due_at,
        settings=rt.settings,
        renderer=rt.renderer,
        links=False,
    )
    entry: dict[str, Any] = {
        "key": draft.key,
        "topics": topics,
        "channel": str(draft.channel),
        "status": status,
        "due_at": due_at.isoformat().replace("+00:00", "Z"),
        "local_time": to_local(due_at, zone(patient.timezone)).isoformat(),
        "timezone": patient.timezone,
    }
    if message.subject is not None:
        entry["subject"] = message.subject
    entry["body"] = message.body
    return entry


def _planned(
    rt: Runtime, plan: Plan, clinic: Clinic, patient: Patient, channels: list[Channel], first: bool
) -> list[dict[str, Any]]:
    def on_each_channel(
        key: str,
        parts: tuple[Part, ...],
        *,
        topics: list[str],
        due_at: datetime,
        status: str,
        first: bool,
    ) -> list[dict[str, Any]]:
        return [
            _entry(
                rt,
                Draft(0, 0, key, channel, parts),
                clinic=clinic,
                patient=patient,
                topics=topics,
                due_at=due_at,
                status=status,
                first=first,
            )
            for channel in channels
        ]

    entries = []
    for message in plan.messages:
        parts = tuple(Part(item.template, dict(item.params)) for item in message.items)
        topics = list(message.topics)
        entries += on_each_channel(
            message.key, parts, topics=topics, due_at=message.due_at, status="planned", first=first
        )
        first = False
    # After-course messages wait for the clinic to record the last dose; shown on the day
    # they would fall were the planned end the last dose.
    tz = zone(patient.timezone)
    for item in plan.waiting:
        due_at = local_instant(item.day, clinic.send_time, tz)
        parts = (Part(item.template, dict(item.params)),)
        entries += on_each_channel(
            item.key, parts, topics=[item.topic], due_at=due_at, status=WAITING, first=False
        )
    return entries


# The status of a message that goes out only once the clinic records the last dose.
WAITING = "waiting_for_clinic"


def preview_new(
    rt: Runtime,
    *,
    start: str,
    tz: str,
    weeks: int,
    ipledge: bool,
    locale: str,
    channel: str,
    last_dose: str | None,
    tests: list[str],
    clinic_name: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """The timeline of a course not enrolled yet (no database)."""
    from reminders.render import LOCALES

    def parsed(field: str, parse: Any, value: Any) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise InvalidInput.one(field, str(exc)) from None

    start_date = parsed("start", parse_date, start)
    parsed("tz", parse_timezone, tz)
    if locale not in LOCALES:
        raise InvalidInput.one("locale", f"{locale!r} is not one of {', '.join(LOCALES)}")
    if channel not in ("sms", "email"):
        raise InvalidInput.one("channel", f"{channel!r} is not sms or email")
    try:
        sms_name = sms_name_for(clinic_name, None)
    except ValueError:
        sms_name = ""  # the whole name, as the clinic would be asked to shorten it
    clinic = Clinic(name=clinic_name, sms_name=sms_name, help_contact="")
    patient = Patient(
        clinic_id=0,
        first_name="Alex",
        channel=ChannelChoice(channel),
        timezone=tz,
        locale=locale,
        ipledge=ipledge,
        consent_at=now,
        consent_source="preview",
    )
    course = CourseFacts(
        start_date=start_date,
        weeks=weeks,
        last_dose_date=parsed("last_dose", parse_date, last_dose) if last_dose else None,
        plan_from=local_instant(start_date, time(0, 0), zone(tz)),
        pregnancy_tests=tuple(
            PregnancyTest(taken=day, recorded=day)
            for day in sorted(parsed("pregnancy_test", parse_date, t) for t in tests)
        ),
    )
    plan = plan_course(plan=rt.careplan, course=course, rules=rules_for(clinic, patient), now=now)
    return _planned(rt, plan, clinic, patient, [Channel(channel)], first=True)


def preview_course(
    session: Session, rt: Runtime, *, course_id: int, now: datetime, clinic_id: int | None = None
) -> list[dict[str, Any]]:
    """An enrolled course: its outbox history, then what is still planned."""
    course: Course = get_course(session, course_id=course_id, clinic_id=clinic_id)
    patient = session.get(Patient, course.patient_id)
    assert patient is not None
    clinic = session.get(Clinic, patient.clinic_id)
    assert clinic is not None
    plan, rows = plan_for(session, course=course, careplan=rt.careplan, now=now)
    entries = []
    planned_keys = {m.key for m in plan.messages}
    sms_seen = False
    for row in sorted(rows, key=lambda r: (r.due_at, r.channel)):
        if row.status == MessageStatus.pending and row.key in planned_keys:
            continue  # shown with the plan below
        if row.status == MessageStatus.cancelled:
            continue
        first = row.channel == Channel.sms and not sms_seen
        sms_seen = sms_seen or row.channel == Channel.sms
        entries.append(
            _entry(
                rt,
                Draft.of(row),
                clinic=clinic,
                patient=patient,
                topics=row.topics.split(","),
                due_at=row.sent_at or row.due_at,
                status=str(row.status),
                first=first,
            )
        )
    entries += _planned(rt, plan, clinic, patient, channels_for(patient), first=not sms_seen)
    return entries


__all__ = ["preview_course", "preview_new"]
