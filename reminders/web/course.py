"""A patient's page: the course timeline, consent history and the course actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from reminders.audit import record_by
from reminders.db import read_scope, session_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.models import Channel, ConsentEvent, Course, Patient
from reminders.planning import PREGNANCY_TEST
from reminders.preview import WAITING, preview_course
from reminders.runtime import Runtime
from reminders.services import (
    Conflict,
    Context,
    NotFound,
    change_course,
    consent_history,
    current_course,
    end_course,
    end_to_confirm,
    get_clinic,
    get_course,
    get_patient,
    patient_replies,
    pause_course,
    record_event,
    resume_course,
    stop_course,
)
from reminders.services.reachability import contact_changes
from reminders.timing import to_local, zone
from reminders.validation import FieldError, InvalidInput
from reminders.web.addresses import listed, path_id
from reminders.web.pages import as_utc, errors_by_field, redirect, render
from reminders.web.queries import CHANNEL_NAMES
from reminders.web.security import PREFIX, FormDep, PageNotFound, Staff, StaffDep, field

router = APIRouter(prefix=PREFIX, include_in_schema=False)

SHOWN_UPCOMING = 5  # the rest of the plan folds away under "show all"


Entry = dict[str, Any]


def _timeline(entries: list[Entry], timezone: str) -> tuple[list[Entry], list[Entry], list[Entry]]:
    """Past, upcoming and waiting entries (after-course messages that wait for the clinic's
    last dose), each with its instant as an aware datetime."""
    past: list[Entry] = []
    upcoming: list[Entry] = []
    waiting: list[Entry] = []
    for entry in entries:
        at = as_utc(datetime.fromisoformat(entry["due_at"]))
        item = {**entry, "at": at, "local": to_local(at, zone(timezone))}
        if entry["status"] == WAITING:
            waiting.append(item)
        elif entry["status"] in ("planned", "pending"):
            upcoming.append(item)
        else:
            past.append(item)
    return past, upcoming, waiting


def _patient_view(
    session: Session, rt: Runtime, staff: Staff, patient_id: int, now: datetime
) -> dict[str, Any]:
    try:
        patient = get_patient(session, patient_id=patient_id, clinic_id=staff.clinic_id)
    except NotFound:
        raise PageNotFound() from None
    clinic = get_clinic(session, staff.clinic_id)
    course = current_course(session, patient_id=patient_id)
    past: list[Entry] = []
    upcoming: list[Entry] = []
    waiting: list[Entry] = []
    # An erased patient's texts are gone: there is no timeline left to draw.
    if course is not None and course.id is not None and patient.erased_at is None:
        entries = preview_course(
            session, rt, course_id=course.id, now=now, clinic_id=staff.clinic_id
        )
        past, upcoming, waiting = _timeline(entries, patient.timezone)
    # The patient's replies in line with what they were sent, each at its own instant.
    replies = [
        {"reply": reply, "at": as_utc(reply.received_at)}
        for reply in patient_replies(session, patient_id=patient_id)
    ]
    # When a contact was found unreachable, and when staff changed it.
    contacts = [
        {"contact": event, "at": as_utc(event.at)}
        for event in contact_changes(session, patient_id=patient_id)
    ]
    past = sorted(past + replies + contacts, key=lambda item: item["at"])
    consent = consent_history(session, patient_id=patient_id)
    today = to_local(now, zone(patient.timezone)).date()
    return {
        "patient": patient,
        "course": course,
        "expected_end": course.start_date + timedelta(weeks=course.weeks) if course else None,
        "past": list(reversed(past)),  # the latest first: what staff look for
        "upcoming": upcoming,
        "waiting": list({item["key"]: item for item in waiting}.values()),
        "shown_upcoming": SHOWN_UPCOMING,
        "consent": consent,
        "opt_outs": _why_opted_out(patient, consent),
        "ipledge": patient.ipledge and clinic.ipledge_enabled,
        "end_to_confirm": course is not None and end_to_confirm(course, today=today),
        "today": today,
        "channel_names": CHANNEL_NAMES,
    }


def _why_opted_out(patient: Patient, consent: list[ConsentEvent]) -> dict[str, ConsentEvent]:
    """For each channel the patient is opted out of, the ledger entry that did it."""
    stopped = {
        Channel.sms.value: patient.sms_opted_out,
        Channel.email.value: patient.email_opted_out,
    }
    found: dict[str, ConsentEvent] = {}
    for event in consent:
        if event.action == "opt_out" and stopped[event.channel]:
            found[event.channel] = event  # the ledger is oldest first: the latest wins
    return found


def _patient_page(
    request: Request,
    rt: Runtime,
    staff: Staff,
    patient_id: int,
    now: datetime,
    *,
    action: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    with read_scope(rt.engine) as session:
        view = _patient_view(session, rt, staff, patient_id, now)
        record_by(
            session,
            staff,
            "patient.view",
            now=now,
            patient_id=patient_id,
            detail="timeline" if view["course"] is not None else "",
        )
    return render(
        request,
        "patient.html",
        title=view["patient"].first_name,
        staff=staff,
        code=status,
        action=action,
        errors=errors or {},
        values=values or {},
        **view,
    )


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request, patient_id: str, staff: StaffDep, rt: RuntimeDep, now: NowDep
) -> Response:
    return _patient_page(request, rt, staff, path_id(patient_id), now)


@dataclass(frozen=True)
class CourseAction:
    """One course action on the patient's page: its form, its change and what staff are told."""

    form: str  # the form's name on the page (its id is action-<form>)
    audit: str  # its name in the audit trail
    apply: Callable[[Session, Course, dict[str, str], Context], object]
    done: str  # the message after it was made; may name the fields, e.g. {last_dose_date}
    fields: tuple[str, ...] = ()  # the form fields it reads
    required: tuple[str, ...] = ()  # those of them that must not be empty


def _stop(session: Session, course: Course, values: dict[str, str], ctx: Context) -> None:
    if values["confirm"] != "yes":
        raise InvalidInput.one("confirm", "tick the box to confirm: stopping is final")
    stop_course(session, course=course, ctx=ctx)


def _change(session: Session, course: Course, values: dict[str, str], ctx: Context) -> None:
    start, weeks = values["start_date"], values["weeks"]
    if not start and not weeks:
        raise InvalidInput([FieldError("start_date", "give a new start date or length")])
    change_course(session, course=course, ctx=ctx, start_date=start or None, weeks=weeks or None)


# Each action by its address under /courses/{id}/.
ACTIONS = {
    "pause": CourseAction(
        "pause",
        "course.pause",
        lambda session, course, _values, ctx: pause_course(session, course=course, ctx=ctx),
        "The course is paused: no messages go out until it resumes.",
    ),
    "resume": CourseAction(
        "resume",
        "course.resume",
        lambda session, course, _values, ctx: resume_course(session, course=course, ctx=ctx),
        "The course is resumed from today.",
    ),
    "stop": CourseAction(
        "stop",
        "course.stop",
        _stop,
        "The course is stopped. No more messages will be sent.",
        fields=("confirm",),
    ),
    "end": CourseAction(
        "end",
        "course.end",
        lambda session, course, values, ctx: end_course(
            session, course=course, last_dose_date=values["last_dose_date"], ctx=ctx
        ),
        "Last dose recorded: {last_dose_date}. The after-course messages count from it.",
        fields=("last_dose_date",),
        required=("last_dose_date",),
    ),
    "change": CourseAction(
        "change",
        "course.change",
        _change,
        "The course is changed; the messages still to come are planned again.",
        fields=("start_date", "weeks"),
    ),
    "pregnancy-test": CourseAction(
        "test",
        "course.event",
        lambda session, course, values, ctx: record_event(
            session, course=course, type=PREGNANCY_TEST, on=values["date"], ctx=ctx
        ),
        "Pregnancy test of {date} recorded: the monthly steps countdown is planned.",
        fields=("date",),
        required=("date",),
    ),
}


@router.post("/courses/{course_id}/{name}")
def course_action(
    request: Request,
    course_id: str,
    name: str,
    staff: StaffDep,
    form: FormDep,
    rt: RuntimeDep,
    now: NowDep,
) -> Response:
    """Apply one change in one transaction; on refusal nothing is kept and the page says why."""
    action = listed(ACTIONS, name)
    values = {key: field(form, key) for key in action.fields}
    missing = [FieldError(key, "required") for key in action.required if not values[key]]
    course_number = path_id(course_id)
    patient_id = None
    try:
        with session_scope(rt.engine) as session:
            try:
                course = get_course(session, course_id=course_number, clinic_id=staff.clinic_id)
            except NotFound:
                raise PageNotFound() from None
            patient_id = course.patient_id
            if missing:
                raise InvalidInput(missing)
            action.apply(session, course, values, rt.context(now))
            record_by(
                session,
                staff,
                action.audit,
                now=now,
                patient_id=patient_id,
                detail=f"course {course_number}",
            )
    except InvalidInput as exc:
        errors = errors_by_field(exc.errors)
    except Conflict as exc:
        errors = {exc.field: exc.reason[:1].upper() + exc.reason[1:]}
    else:
        done = action.done.format(**values)
        return redirect(request, f"{PREFIX}/patients/{patient_id}", flash=done)
    assert patient_id is not None
    return _patient_page(
        request,
        rt,
        staff,
        patient_id,
        now,
        action=action.form,
        errors=errors,
        values=values,
        status=409 if "status" in errors else 422,
    )


@router.get("/{path:path}")
def unknown_page(path: str) -> Response:
    """Any other address under the clinic pages: the same 404 page, not a JSON error."""
    if not path:  # /clinic/ is the overview
        return RedirectResponse(PREFIX, status_code=307)
    raise PageNotFound()
