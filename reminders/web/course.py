"""A patient's page: the course timeline, consent history and the course actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from reminders.api.clinic import MAX_DATE_DISTANCE
from reminders.api.deps import NowDep, RuntimeDep
from reminders.db import session_scope
from reminders.models import Patient
from reminders.outbox import zone
from reminders.planning import PREGNANCY_TEST
from reminders.preview import preview_course
from reminders.runtime import Runtime
from reminders.services import (
    Conflict,
    NotFound,
    change_course,
    consent_history,
    current_course,
    end_course,
    get_clinic,
    get_course,
    get_patient,
    pause_course,
    record_event,
    resume_course,
    stop_course,
)
from reminders.timing import to_local
from reminders.validation import FieldError, InvalidInput, parse_date
from reminders.web.pages import as_utc, errors_by_field, redirect, render
from reminders.web.queries import CHANNEL_NAMES
from reminders.web.security import PREFIX, FormDep, PageNotFound, Staff, StaffDep, field

router = APIRouter(prefix=PREFIX, include_in_schema=False)

MAX_ID = 2**31 - 1  # ids are database integers; larger values cannot name a row
SHOWN_UPCOMING = 5  # the rest of the plan folds away under "show all"


def _id(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise PageNotFound()
    return int(text)


Entry = dict[str, Any]


def _timeline(entries: list[Entry], timezone: str) -> tuple[list[Entry], list[Entry]]:
    """Past and upcoming entries, each with its instant as an aware datetime."""
    past: list[Entry] = []
    upcoming: list[Entry] = []
    for entry in entries:
        at = as_utc(datetime.fromisoformat(entry["due_at"]))
        item = {**entry, "at": at, "local": to_local(at, zone(timezone))}
        (upcoming if entry["status"] in ("planned", "pending") else past).append(item)
    return past, upcoming


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
    if course is not None and course.id is not None:
        entries = preview_course(
            session, rt, course_id=course.id, now=now, clinic_id=staff.clinic_id
        )
        past, upcoming = _timeline(entries, patient.timezone)
    today = to_local(now, zone(patient.timezone)).date()
    return {
        "patient": patient,
        "course": course,
        "expected_end": course.start_date + timedelta(weeks=course.weeks) if course else None,
        "past": list(reversed(past)),  # the latest first: what staff look for
        "upcoming": upcoming,
        "shown_upcoming": SHOWN_UPCOMING,
        "consent": consent_history(session, patient_id=patient_id),
        "ipledge": patient.ipledge and clinic.ipledge_enabled,
        "today": today,
        "channel_names": CHANNEL_NAMES,
    }


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
    with session_scope(rt.engine) as session:
        view = _patient_view(session, rt, staff, patient_id, now)
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
    return _patient_page(request, rt, staff, _id(patient_id), now)


def _date_within_a_year(name: str, text: str, today: date) -> date:
    """A date near today (months counted from a far date would overflow while planning)."""
    try:
        day = parse_date(text)
    except ValueError as exc:
        raise InvalidInput.one(name, "required" if not text else str(exc)) from None
    if abs(day - today) > MAX_DATE_DISTANCE:
        raise InvalidInput.one(name, f"{day} is more than a year from today")
    return day


def _course_action(
    request: Request,
    rt: Runtime,
    staff: Staff,
    course_text: str,
    now: datetime,
    *,
    action: str,
    done: str,
    apply: Callable[[Session, Any, Patient], object],
    values: dict[str, str] | None = None,
) -> Response:
    """Apply one change in one transaction; on refusal nothing is kept and the page says why."""
    course_id = _id(course_text)
    patient_id = None
    try:
        with session_scope(rt.engine) as session:
            try:
                course = get_course(session, course_id=course_id, clinic_id=staff.clinic_id)
            except NotFound:
                raise PageNotFound() from None
            patient_id = course.patient_id
            patient = session.get(Patient, patient_id)
            assert patient is not None
            apply(session, course, patient)
    except InvalidInput as exc:
        errors = errors_by_field(exc.errors)
    except Conflict as exc:
        reason = str(exc).partition(": ")[2] or str(exc)
        errors = {"status": reason[:1].upper() + reason[1:]}
    else:
        return redirect(request, f"{PREFIX}/patients/{patient_id}", flash=done)
    assert patient_id is not None
    return _patient_page(
        request,
        rt,
        staff,
        patient_id,
        now,
        action=action,
        errors=errors,
        values=values,
        status=409 if "status" in errors else 422,
    )


def _today(patient: Patient, now: datetime) -> date:
    return to_local(now, zone(patient.timezone)).date()


@router.post("/courses/{course_id}/pause")
def pause(
    request: Request, course_id: str, staff: StaffDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    ctx = rt.context(now)
    return _course_action(
        request,
        rt,
        staff,
        course_id,
        now,
        action="pause",
        done="The course is paused: no messages go out until it resumes.",
        apply=lambda session, course, _patient: pause_course(session, course=course, ctx=ctx),
    )


@router.post("/courses/{course_id}/resume")
def resume(
    request: Request, course_id: str, staff: StaffDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    ctx = rt.context(now)
    return _course_action(
        request,
        rt,
        staff,
        course_id,
        now,
        action="resume",
        done="The course is resumed from today.",
        apply=lambda session, course, _patient: resume_course(session, course=course, ctx=ctx),
    )


@router.post("/courses/{course_id}/stop")
def stop(
    request: Request, course_id: str, staff: StaffDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    ctx = rt.context(now)

    def apply(session: Session, course: Any, _patient: Patient) -> None:
        if field(form, "confirm") != "yes":
            raise InvalidInput.one("confirm", "tick the box to confirm: stopping is final")
        stop_course(session, course=course, ctx=ctx)

    return _course_action(
        request,
        rt,
        staff,
        course_id,
        now,
        action="stop",
        done="The course is stopped. No more messages will be sent.",
        apply=apply,
    )


@router.post("/courses/{course_id}/end")
def end(
    request: Request, course_id: str, staff: StaffDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    ctx = rt.context(now)
    text = field(form, "last_dose_date")

    def apply(session: Session, course: Any, patient: Patient) -> None:
        day = _date_within_a_year("last_dose_date", text, _today(patient, now))
        end_course(session, course=course, last_dose_date=day, ctx=ctx)

    return _course_action(
        request,
        rt,
        staff,
        course_id,
        now,
        action="end",
        done=f"Last dose recorded: {text}. The after-course messages count from it.",
        apply=apply,
        values={"last_dose_date": text},
    )


@router.post("/courses/{course_id}/change")
def change(
    request: Request, course_id: str, staff: StaffDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    ctx = rt.context(now)
    start, weeks = field(form, "start_date"), field(form, "weeks")

    def apply(session: Session, course: Any, _patient: Patient) -> None:
        if not start and not weeks:
            raise InvalidInput([FieldError("start_date", "give a new start date or length")])
        change_course(
            session, course=course, ctx=ctx, start_date=start or None, weeks=weeks or None
        )

    return _course_action(
        request,
        rt,
        staff,
        course_id,
        now,
        action="change",
        done="The course is changed; the messages still to come are planned again.",
        apply=apply,
        values={"start_date": start, "weeks": weeks},
    )


@router.post("/courses/{course_id}/pregnancy-test")
def pregnancy_test(
    request: Request, course_id: str, staff: StaffDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    ctx = rt.context(now)
    text = field(form, "date")

    def apply(session: Session, course: Any, _patient: Patient) -> None:
        if not text:
            raise InvalidInput.one("date", "required")
        record_event(session, course=course, type=PREGNANCY_TEST, on=text, ctx=ctx)

    return _course_action(
        request,
        rt,
        staff,
        course_id,
        now,
        action="test",
        done=f"Pregnancy test of {text} recorded: the monthly steps countdown is planned.",
        apply=apply,
        values={"date": text},
    )


@router.get("/{path:path}")
def unknown_page(path: str) -> Response:
    """Any other address under the clinic pages: the same 404 page, not a JSON error."""
    if not path:  # /clinic/ is the overview
        return RedirectResponse(PREFIX, status_code=307)
    raise PageNotFound()
