"""The clinic API under /v1: enrol patients, read their messages and consent, change courses.

Every route is scoped to the clinic of the API key: another clinic's ids answer 404, exactly
like ids that do not exist, so nothing tells one clinic about another's records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlmodel import Session

from reminders.api.errors import ADMIN_RESPONSE, CONFLICT_RESPONSE, ERROR_RESPONSES
from reminders.api.params import Offset, PageSize
from reminders.api.schemas import (
    AuditOut,
    AuditPage,
    ClinicChange,
    ClinicOut,
    ConsentList,
    ConsentOut,
    CourseChange,
    CourseEnd,
    CourseOut,
    EnrollIn,
    EventIn,
    EventOut,
    MessageList,
    MessageOut,
    MessageStatusName,
    PatientChange,
    PatientOut,
    PatientPage,
)
from reminders.audit import record_by, trail
from reminders.deps import (
    AdminDep,
    Caller,
    CallerDep,
    ClinicDep,
    ContextDep,
    NowDep,
    SessionDep,
)
from reminders.models import MAX_ID, Course, CourseStatus, MessageStatus, Patient
from reminders.services import (
    Context,
    change_course,
    consent_history,
    current_course,
    end_course,
    enroll,
    erase_patient,
    get_clinic,
    get_course,
    get_patient,
    list_patients,
    patient_messages,
    pause_course,
    record_event,
    resume_course,
    stop_course,
    update_clinic,
    update_patient,
)
from reminders.timing import local_today
from reminders.validation import InvalidInput, strip_refused

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

PatientId = Annotated[int, Path(ge=1, le=MAX_ID, description="Patient id")]
CourseId = Annotated[int, Path(ge=1, le=MAX_ID, description="Course id")]
SOURCE = "api"


@router.get("/clinic", tags=["clinic"])
def read_clinic(clinic: ClinicDep) -> ClinicOut:
    """The clinic of the key: its name, zone, help phone and the address told of replies."""
    return ClinicOut.model_validate(clinic)


@router.patch("/clinic", tags=["clinic"], responses=ADMIN_RESPONSE)
def change_clinic(
    body: ClinicChange, caller: AdminDep, session: SessionDep, now: NowDep
) -> ClinicOut:
    """Change the help phone, or the address told of new replies (null stops the notices);
    an admin key only."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    if not changes:
        raise InvalidInput.one("body", "give help_contact or notify_email")
    clinic = get_clinic(session, caller.clinic.id)  # type: ignore[arg-type]
    update_clinic(session, clinic=clinic, changes=changes)
    record_by(session, caller, "clinic.update", now=now, detail=", ".join(sorted(changes)))
    return ClinicOut.model_validate(clinic)


def _look_up(
    session: Session, caller: Caller, patient_id: int, action: str, now: datetime
) -> Patient:
    """The clinic's patient, with the trail entry that says who looked at which record."""
    patient = get_patient(session, patient_id=patient_id, clinic_id=caller.clinic.id)
    record_by(session, caller, action, now=now, patient_id=patient_id)
    return patient


@router.post("/patients", status_code=201, tags=["patients"])
def create_patient(
    body: EnrollIn, caller: CallerDep, session: SessionDep, ctx: ContextDep
) -> PatientOut:
    """Enroll a patient with a course; the first messages are planned at once.

    A patient the clinic has already (the same `external_id`, or the same phone, first and
    last name) gets the new course on their record: the answer names that patient's id."""
    raw = body.model_dump(mode="json")
    patient, course = enroll(session, clinic=caller.clinic, raw=raw, source=SOURCE, ctx=ctx)
    record_by(
        session,
        caller,
        "patient.enroll",
        now=ctx.now,
        patient_id=patient.id,
        detail=f"course {course.id}",
    )
    return PatientOut.of(patient, course, now=ctx.now)


@router.get("/patients", tags=["patients"])
def read_patients(
    caller: CallerDep,
    session: SessionDep,
    now: NowDep,
    status: Annotated[CourseStatus | None, Query(description="Course status")] = None,
    search: Annotated[
        str,
        Query(
            max_length=100,
            description="Part of a name, an email or a chart number, or a phone in any format",
        ),
    ] = "",
    limit: PageSize = 50,
    offset: Offset = 0,
) -> PatientPage:
    """The clinic's patients with their latest course, oldest enrolment first."""
    rows, total = list_patients(
        session,
        clinic_id=caller.clinic.id,
        status=status.value if status else None,
        search=strip_refused(search),
        region=caller.clinic.region,
        limit=limit,
        offset=offset,
    )
    items = [PatientOut.of(patient, course, now=now) for patient, course in rows]
    # What was looked at, never what was searched for (a name, a phone).
    detail = f"{len(items)} of {total}, from {offset}" + (", searched" if search else "")
    record_by(session, caller, "patient.list", now=now, detail=detail)
    return PatientPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/patients/{patient_id}", tags=["patients"])
def read_patient(
    patient_id: PatientId, caller: CallerDep, session: SessionDep, now: NowDep
) -> PatientOut:
    patient = _look_up(session, caller, patient_id, "patient.read", now)
    return PatientOut.of(patient, current_course(session, patient_id=patient_id), now=now)


@router.patch("/patients/{patient_id}", tags=["patients"], responses=CONFLICT_RESPONSE)
def change_patient(
    patient_id: PatientId,
    body: PatientChange,
    caller: CallerDep,
    session: SessionDep,
    ctx: ContextDep,
) -> PatientOut:
    """Change contact, channel, time zone or locale; pending messages are planned again."""
    patient = get_patient(session, patient_id=patient_id, clinic_id=caller.clinic.id)
    changes = body.model_dump(mode="json", exclude_unset=True)
    if not changes:
        raise InvalidInput.one("body", "give at least one field to change")
    update_patient(session, patient=patient, changes=changes, source=SOURCE, ctx=ctx)
    # The names of the fields changed, never their values.
    record_by(
        session,
        caller,
        "patient.update",
        now=ctx.now,
        patient_id=patient_id,
        detail=", ".join(sorted(changes)),
    )
    return PatientOut.of(patient, current_course(session, patient_id=patient_id), now=ctx.now)


@router.delete(
    "/patients/{patient_id}",
    tags=["patients"],
    responses={**ADMIN_RESPONSE, **CONFLICT_RESPONSE},
)
def erase(patient_id: PatientId, caller: AdminDep, session: SessionDep, now: NowDep) -> PatientOut:
    """Erase a patient (an admin key only): name, contacts, planned texts and replies give way
    to a marker; the consent ledger's dated events and the message counts stay. Refused
    (409) while a course is running."""
    patient = get_patient(session, patient_id=patient_id, clinic_id=caller.clinic.id)
    erase_patient(session, patient=patient, now=now)
    record_by(session, caller, "patient.erase", now=now, patient_id=patient_id)
    return PatientOut.of(patient, current_course(session, patient_id=patient_id), now=now)


@router.get("/patients/{patient_id}/messages", tags=["patients"])
def read_messages(
    patient_id: PatientId,
    caller: CallerDep,
    session: SessionDep,
    now: NowDep,
    status: Annotated[MessageStatusName | None, Query(description="Only this status")] = None,
) -> MessageList:
    """What the patient was sent and what is planned: time, topics, channel, status, error."""
    _look_up(session, caller, patient_id, "patient.messages", now)
    stored = None
    if status is not None:
        stored = MessageStatus.pending.value if status == "planned" else status
    rows = patient_messages(session, patient_id=patient_id, status=stored)
    return MessageList(items=[MessageOut.model_validate(row) for row in rows])


@router.get("/patients/{patient_id}/consent", tags=["patients"])
def read_consent(
    patient_id: PatientId, caller: CallerDep, session: SessionDep, now: NowDep
) -> ConsentList:
    """Every opt-in and opt-out of the patient, with its source, oldest first."""
    patient = _look_up(session, caller, patient_id, "patient.consent", now)
    events = consent_history(session, patient_id=patient_id)
    return ConsentList(
        items=[ConsentOut.model_validate(event) for event in events],
        sms_opted_out=patient.sms_opted_out,
        email_opted_out=patient.email_opted_out,
    )


def _act(
    session: Session,
    caller: Caller,
    course_id: int,
    ctx: Context,
    action: Callable[..., Any],
    name: str,
    **kwargs: Any,
) -> CourseOut:
    course: Course = get_course(session, course_id=course_id, clinic_id=caller.clinic.id)
    action(session, course=course, ctx=ctx, **kwargs)
    record_by(
        session,
        caller,
        name,
        now=ctx.now,
        patient_id=course.patient_id,
        detail=f"course {course_id}",
    )
    patient = get_patient(session, patient_id=course.patient_id, clinic_id=caller.clinic.id)
    return CourseOut.of(course, today=local_today(ctx.now, patient.timezone))


@router.post("/courses/{course_id}/pause", tags=["courses"], responses=CONFLICT_RESPONSE)
def pause(
    course_id: CourseId, caller: CallerDep, session: SessionDep, ctx: ContextDep
) -> CourseOut:
    """Pause an active course: pending messages are cancelled until it resumes."""
    return _act(session, caller, course_id, ctx, pause_course, "course.pause")


@router.post("/courses/{course_id}/resume", tags=["courses"], responses=CONFLICT_RESPONSE)
def resume(
    course_id: CourseId, caller: CallerDep, session: SessionDep, ctx: ContextDep
) -> CourseOut:
    """Resume a paused course from now; what fell due during the pause is not sent late."""
    return _act(session, caller, course_id, ctx, resume_course, "course.resume")


@router.post("/courses/{course_id}/stop", tags=["courses"], responses=CONFLICT_RESPONSE)
def stop(course_id: CourseId, caller: CallerDep, session: SessionDep, ctx: ContextDep) -> CourseOut:
    """Stop a course for good: every pending message is cancelled."""
    return _act(session, caller, course_id, ctx, stop_course, "course.stop")


@router.post("/courses/{course_id}/end", tags=["courses"], responses=CONFLICT_RESPONSE)
def end(
    course_id: CourseId, body: CourseEnd, caller: CallerDep, session: SessionDep, ctx: ContextDep
) -> CourseOut:
    """Record the last dose; the after-course messages are planned from it."""
    return _act(
        session,
        caller,
        course_id,
        ctx,
        end_course,
        "course.end",
        last_dose_date=body.last_dose_date,
    )


@router.patch("/courses/{course_id}", tags=["courses"], responses=CONFLICT_RESPONSE)
def change(
    course_id: CourseId,
    body: CourseChange,
    caller: CallerDep,
    session: SessionDep,
    ctx: ContextDep,
) -> CourseOut:
    """Move the start date or the planned length; only pending messages are planned again."""
    if body.start_date is None and body.weeks is None:
        raise InvalidInput.one("start_date", "give start_date or weeks")
    return _act(
        session,
        caller,
        course_id,
        ctx,
        change_course,
        "course.change",
        start_date=body.start_date,
        weeks=body.weeks,
    )


@router.post("/courses/{course_id}/events", status_code=201, tags=["courses"])
def add_event(
    course_id: CourseId, body: EventIn, caller: CallerDep, session: SessionDep, ctx: ContextDep
) -> EventOut:
    """Record a course event: a pregnancy test on its date starts the iPLEDGE countdown."""
    course = get_course(session, course_id=course_id, clinic_id=caller.clinic.id)
    event = record_event(session, course=course, type=body.type, on=body.date, ctx=ctx)
    record_by(
        session,
        caller,
        "course.event",
        now=ctx.now,
        patient_id=course.patient_id,
        detail=f"course {course_id}: {body.type}",
    )
    return EventOut.model_validate(event)


@router.get("/audit", tags=["audit"], responses=ADMIN_RESPONSE)
def read_audit(
    caller: AdminDep,
    session: SessionDep,
    patient_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this patient's entries")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> AuditPage:
    """The clinic's audit trail, newest first (an admin key only): who saw or changed which
    patient, when and from where."""
    events, total = trail(
        session,
        clinic_id=caller.clinic.id,  # type: ignore[arg-type]
        patient_id=patient_id,
        limit=limit,
        offset=offset,
    )
    return AuditPage(
        items=[AuditOut.model_validate(event) for event in events],
        total=total,
        limit=limit,
        offset=offset,
    )
