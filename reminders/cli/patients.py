"""Enrolling patients (one, or a spreadsheet of them), previewing a course's timeline, erasing
a patient, and reading the audit trail."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from reminders.audit import Actor
from reminders.cli.base import (
    FLAGS,
    ClinicOption,
    Format,
    FormatOption,
    PatientArgument,
    app,
    clear_errors,
    command_scope,
    emit,
    fail,
    patient_app,
    runtime,
)
from reminders.clock import as_utc, utcnow
from reminders.db import read_scope
from reminders.importer import PARTIAL_DEFAULT
from reminders.timing import to_local, zone


@app.command()
def enroll(
    clinic: ClinicOption,
    first_name: Annotated[str, typer.Option(help="Patient's first name.")],
    tz: Annotated[str, typer.Option(help="Patient's IANA time zone.")],
    start: Annotated[str, typer.Option(help="Course start date, YYYY-MM-DD.")],
    phone: Annotated[str | None, typer.Option(help="Mobile number.")] = None,
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    channel: Annotated[str, typer.Option(help="sms, email or both.")] = "sms",
    weeks: Annotated[int, typer.Option(help="Planned length in weeks.")] = 20,
    locale: Annotated[str, typer.Option(help="en or es.")] = "en",
    ipledge: Annotated[
        bool,
        typer.Option(
            "--ipledge",
            help="The patient can become pregnant: plan the iPLEDGE monthly steps (at clinics "
            "that switch iPLEDGE on).",
        ),
    ] = False,
    last_name: Annotated[str, typer.Option(help="Patient's last name.")] = "",
    date_of_birth: Annotated[str | None, typer.Option(help="Date of birth, YYYY-MM-DD.")] = None,
    external_id: Annotated[
        str | None, typer.Option(help="The clinic's chart number for the patient.")
    ] = None,
    fmt: FormatOption = Format.text,
) -> None:
    """Enroll a patient with a course starting on START.

    A patient the clinic has already (the same --external-id, or the same phone and name)
    gets the new course on their record."""
    from reminders.services import enroll as enroll_patient
    from reminders.services import get_clinic

    raw = {
        "first_name": first_name,
        "phone": phone,
        "email": email,
        "channel": channel,
        "timezone": tz,
        "start_date": start,
        "weeks": weeks,
        "locale": locale,
        "ipledge": ipledge,
        "last_name": last_name,
        "date_of_birth": date_of_birth,
        "external_id": external_id,
    }
    with command_scope(FLAGS) as scope:
        found = get_clinic(scope.session, clinic)
        patient, course = enroll_patient(
            scope.session, clinic=found, raw=raw, source="staff", ctx=scope.rt.context(scope.now)
        )
        scope.audit(
            "patient.enroll", clinic_id=clinic, patient_id=patient.id, detail=f"course {course.id}"
        )
        data = {"patient_id": patient.id, "course_id": course.id}
        returning = as_utc(patient.created_at) < scope.now
        notes = [
            note
            for stopped, note in (
                (patient.sms_opted_out, "this number opted out of texts earlier: none are sent"),
                (patient.email_opted_out, "this address unsubscribed earlier: no email is sent"),
            )
            if stopped
        ]

    def text() -> str:
        lines = [f"patient {data['patient_id']} enrolled, course {data['course_id']}"]
        if returning:
            lines.append("note: the clinic had this patient already: a new course on their record")
        return "\n".join(lines + [f"note: {note}" for note in notes])

    emit(fmt, data, text)


@app.command("import")
def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV file with a header row.", exists=True, dir_okay=False, readable=True
        ),
    ],
    clinic: ClinicOption,
    keep_valid: Annotated[
        bool,
        typer.Option(
            "--keep-valid",
            help="Enroll the valid rows even when others are refused (by default a file with "
            "a refused row enrolls nobody, as on the web page and the API).",
        ),
    ] = PARTIAL_DEFAULT,
    fmt: FormatOption = Format.text,
) -> None:
    """Enroll the rows of a CSV file; list each refused row with its patient and reason.

    Rows whose patient has a live course at the clinic already are left as they are, so
    importing a file twice enrolls nobody twice."""
    from rich.progress import Progress

    from reminders.importer import ImportRefused
    from reminders.importer import import_file as import_rows

    rt = runtime()
    data = file.read_bytes()
    saved = True
    with (
        clear_errors(),
        Progress(transient=True, disable=not sys.stderr.isatty() or fmt == Format.json) as bar,
    ):
        task = bar.add_task("importing", total=None)
        try:
            report = import_rows(
                rt.engine,
                clinic_id=clinic,
                data=data,
                source="import",
                ctx=rt.context(utcnow()),
                partial=keep_valid,
                actor=Actor.command_line(),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except ImportRefused as refused:
            report, saved = refused.report, False
    enrolled = report.enrolled if saved else []
    result = {
        "saved": saved,
        "enrolled": enrolled,
        "already_enrolled": report.already_enrolled,
        "errors": [vars(e) for e in report.errors],
    }

    def text() -> str:
        refused = len({e.row for e in report.errors})
        summary = (
            f"{len(enrolled)} enrolled, {refused} refused,"
            f" {len(report.already_enrolled)} already enrolled"
        )
        lines = [summary]
        if not saved:
            lines.append("nothing was saved: correct the rows below, or use --keep-valid")
        for e in report.errors:
            who = f" ({e.patient})" if e.patient else ""
            lines.append(f"row {e.row}{who}: {e.field}: {e.reason}")
        return "\n".join(lines)

    emit(fmt, result, text)
    if report.errors:
        raise typer.Exit(1)


# How the text preview names a status that is not the outbox's own.
PREVIEW_STATUS = {"waiting_for_clinic": "waits for the clinic to record the last dose:"}


@app.command()
def preview(
    course: Annotated[int | None, typer.Option(help="An enrolled course's id.")] = None,
    start: Annotated[str | None, typer.Option(help="Start date (no database needed).")] = None,
    tz: Annotated[str, typer.Option(help="Time zone.")] = "America/New_York",
    weeks: Annotated[int, typer.Option(help="Planned weeks.")] = 20,
    ipledge: Annotated[
        bool, typer.Option("--ipledge", help="The pregnancy-capable (iPLEDGE) track.")
    ] = False,
    locale: Annotated[str, typer.Option(help="en or es.")] = "en",
    channel: Annotated[str, typer.Option(help="sms or email.")] = "sms",
    last_dose: Annotated[str | None, typer.Option(help="Last dose date.")] = None,
    pregnancy_test: Annotated[
        list[str] | None, typer.Option(help="Test date (repeatable).")
    ] = None,
    clinic_name: Annotated[str, typer.Option(help="Clinic name for the text.")] = "Your Clinic",
    fmt: FormatOption = Format.text,
) -> None:
    """Show a course's whole timeline: local time, UTC, topics, channel and text."""
    from reminders.preview import preview_course, preview_new

    if (course is None) == (start is None):
        fail("course: give either --course or --start")
    rt = runtime()
    with clear_errors(FLAGS):
        if course is not None:
            with read_scope(rt.engine) as session:
                entries = preview_course(session, rt, course_id=course, now=utcnow())
        else:
            entries = preview_new(
                rt,
                start=start or "",
                tz=tz,
                weeks=weeks,
                ipledge=ipledge,
                locale=locale,
                channel=channel,
                last_dose=last_dose,
                tests=pregnancy_test or [],
                clinic_name=clinic_name,
                now=utcnow(),
            )

    def text() -> str:
        zones = sorted({e["timezone"] for e in entries})
        lines = [f"times in {', '.join(zones)} local time, UTC in brackets"] if zones else []
        for e in entries:
            utc = datetime.fromisoformat(e["due_at"].replace("Z", "+00:00"))
            local = to_local(utc, zone(e["timezone"]))
            when = f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({utc:%H:%M} UTC)"
            status = PREVIEW_STATUS.get(e["status"], e["status"])
            lines.append(
                f"{when}  {e['channel']:5}  {status:9} {','.join(e['topics'])}  ({e['key']})"
            )
            if e.get("subject"):
                lines.append(f"    Subject: {e['subject']}")
            lines.append(f"    {e['body']}")
        return "\n".join(lines)

    emit(fmt, entries, text)


@patient_app.command("erase")
def patient_erase(
    patient_id: PatientArgument,
    clinic: Annotated[int, typer.Option(help="The patient's clinic (a check against typos).")],
) -> None:
    """Erase a patient: name, contacts, planned texts and replies become a marker.

    The consent ledger's dated events and the message counts stay. Refused while a course
    is running: stop or finish it first.
    """
    from reminders.services import erase_patient, get_patient

    with command_scope() as scope:
        patient = get_patient(scope.session, patient_id=patient_id, clinic_id=clinic)
        erase_patient(scope.session, patient=patient, now=scope.now)
        scope.audit("patient.erase", clinic_id=clinic, patient_id=patient_id)
    typer.echo(f"patient {patient_id} erased")


@app.command()
def audit(
    clinic: ClinicOption,
    patient: Annotated[int | None, typer.Option(help="Only this patient's entries.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries, newest first.")] = 100,
    offset: Annotated[int, typer.Option(help="Skip this many of the newest entries.")] = 0,
    fmt: FormatOption = Format.text,
) -> None:
    """The clinic's audit trail: who saw or changed which patient, when and from where."""
    from reminders.audit import as_dict, trail
    from reminders.services import get_clinic

    with command_scope() as scope:
        get_clinic(scope.session, clinic)
        events, total = trail(
            scope.session, clinic_id=clinic, patient_id=patient, limit=limit, offset=offset
        )
        entries = [as_dict(event) for event in events]

    def text() -> str:
        lines = [f"{len(entries)} of {total} entries, newest first"]
        for e in entries:
            where = f", {e['address']}" if e["address"] else ""
            who = f"{e['actor']} ({e['actor_kind']}{where})"
            about = f" patient {e['patient_id']}" if e["patient_id"] else ""
            detail = f": {e['detail']}" if e["detail"] else ""
            lines.append(f"{e['at']}  {who}  {e['action']}{about}{detail}")
        return "\n".join(lines)

    emit(fmt, {"items": entries, "total": total, "limit": limit, "offset": offset}, text)


@app.command("patients")
def patients(
    clinic: ClinicOption,
    search: Annotated[
        str, typer.Option(help="Part of a name, email or chart number, or a phone in any format.")
    ] = "",
    limit: Annotated[int, typer.Option(help="At most this many patients, newest first.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many of the newest.")] = 0,
    fmt: FormatOption = Format.text,
) -> None:
    """The clinic's patients, newest first, each with the ids of their courses."""
    from sqlmodel import col, select

    from reminders.models import Course, CourseStatus
    from reminders.services import get_clinic, list_patients
    from reminders.validation import strip_refused

    with command_scope(read_only=True) as scope:
        found = get_clinic(scope.session, clinic)
        rows, total = list_patients(
            scope.session,
            clinic_id=clinic,
            search=strip_refused(search)[:100],
            region=found.region,
            newest_first=True,
            limit=max(1, min(limit, 1000)),
            offset=max(0, offset),
        )
        ids = [patient.id for patient, _ in rows]
        courses: dict[int, list[dict[str, Any]]] = {}
        for course in scope.session.exec(
            select(Course).where(col(Course.patient_id).in_(ids)).order_by(col(Course.id))
        ).all():
            entry = {"id": course.id, "status": CourseStatus(course.status).word}
            courses.setdefault(course.patient_id, []).append(entry)
        items: list[dict[str, Any]] = [
            {
                "id": patient.id,
                "first_name": patient.first_name,
                "last_name": patient.last_name,
                "external_id": patient.external_id,
                "phone": patient.phone,
                "email": patient.email,
                "channel": str(patient.channel),
                "course_ids": [entry["id"] for entry in courses.get(patient.id or 0, [])],
                "courses": courses.get(patient.id or 0, []),
            }
            for patient, _course in rows
        ]
        # What was looked at, never what was searched for.
        scope.audit(
            "patient.list",
            clinic_id=clinic,
            detail=f"{len(items)} of {total}, from {offset}" + (", searched" if search else ""),
        )

    def text() -> str:
        lines = [f"{len(items)} of {total} patients, newest first"]
        for item in items:
            name = f"{item['first_name']} {item['last_name']}".strip()
            chart = f"  chart {item['external_id']}" if item["external_id"] else ""
            contact = " ".join(str(item[key]) for key in ("phone", "email") if item[key])
            listed = ", ".join(f"{entry['id']} ({entry['status']})" for entry in item["courses"])
            lines.append(f"{item['id']}  {name}{chart}  {contact}  courses {listed}")
        return "\n".join(lines)

    emit(fmt, {"items": items, "total": total, "limit": limit, "offset": offset}, text)
