"""The `reminders` command."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from reminders.careplan import CarePlanError
from reminders.clock import utcnow
from reminders.config import ConfigError, get_settings
from reminders.db import session_scope
from reminders.error_reports import init_error_reports
from reminders.logs import setup_logging
from reminders.runtime import Runtime, build
from reminders.services import Conflict, NotFound
from reminders.validation import InvalidInput

app = typer.Typer(
    help="Plans and delivers the reminders of an isotretinoin course over SMS and email.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
clinic_app = typer.Typer(help="Clinics and their API keys.", no_args_is_help=True)
course_app = typer.Typer(
    help="Change a course: pause, resume, stop, end, move.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(clinic_app, name="clinic")
app.add_typer(course_app, name="course")
staff_app = typer.Typer(help="Staff users who sign in to the clinic pages.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")


class Format(StrEnum):
    text = "text"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, a non-zero exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line naming the field, and exit non-zero."""
    try:
        yield
    except (InvalidInput, ConfigError, CarePlanError, Conflict) as exc:
        fail(str(exc))
    except NotFound as exc:
        fail(str(exc), code=3)


def runtime() -> Runtime:
    with clear_errors():
        settings = get_settings()
        setup_logging(settings)
        return build(settings)


def emit(fmt: Format, data: Any, text: Callable[[], str]) -> None:
    if fmt == Format.json:
        typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        typer.echo(text())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to DATABASE_URL (run by the Procfile's release phase)."""
    from reminders.migrations import upgrade

    with clear_errors():
        settings = get_settings()
    setup_logging(settings)
    upgrade(settings.database_url)
    typer.echo("database is up to date")


@clinic_app.command("add")
def clinic_add(
    name: Annotated[str, typer.Option(help="The clinic's name, as patients know it.")],
    tz: Annotated[str, typer.Option(help="Default IANA time zone.")] = "America/New_York",
    region: Annotated[str, typer.Option(help="Region for national phone numbers.")] = "US",
    help_contact: Annotated[str, typer.Option(help="Phone or address for questions.")] = "",
    send_time: Annotated[str, typer.Option(help="Local time messages go out.")] = "10:00",
    no_ipledge: Annotated[
        bool, typer.Option("--no-ipledge", help="Never plan iPLEDGE steps.")
    ] = False,
    fmt: FormatOption = Format.text,
) -> None:
    """Create a clinic; prints its id and its API key (shown only once)."""
    from reminders.services import create_clinic

    rt = runtime()
    with clear_errors(), session_scope(rt.engine) as session:
        clinic, key = create_clinic(
            session,
            name=name,
            timezone=tz,
            region=region,
            help_contact=help_contact,
            send_time=send_time,
            ipledge=not no_ipledge,
            now=utcnow(),
        )
        session.flush()
        data = {"id": clinic.id, "name": clinic.name, "api_key": key}
    emit(fmt, data, lambda: f"clinic {data['id']} created\nAPI key (shown once): {key}")


@clinic_app.command("rotate-key")
def clinic_rotate_key(
    clinic_id: Annotated[int, typer.Argument(help="Clinic id.")], fmt: FormatOption = Format.text
) -> None:
    """Issue a new API key for a clinic; the old one stops working at once."""
    from reminders.services import rotate_api_key

    rt = runtime()
    with clear_errors(), session_scope(rt.engine) as session:
        key = rotate_api_key(session, clinic_id=clinic_id)
    emit(fmt, {"id": clinic_id, "api_key": key}, lambda: f"new API key (shown once): {key}")


@staff_app.command("add")
def staff_add(
    clinic: Annotated[int, typer.Option(help="Clinic id.")],
    email: Annotated[str, typer.Option(help="The staff member's email; they sign in with it.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="At least 12 characters; asked for (twice, not shown) when not given.",
        ),
    ],
) -> None:
    """Add a staff user to a clinic, who can then sign in at /clinic."""
    from reminders.staff import create_staff

    rt = runtime()
    with clear_errors(), session_scope(rt.engine) as session:
        user = create_staff(session, clinic_id=clinic, email=email, password=password, now=utcnow())
        user_id = user.id
    typer.echo(f"staff user {user_id} added to clinic {clinic}")


@app.command()
def enroll(
    clinic: Annotated[int, typer.Option(help="Clinic id.")],
    first_name: Annotated[str, typer.Option(help="Patient's first name.")],
    tz: Annotated[str, typer.Option(help="Patient's IANA time zone.")],
    start: Annotated[str, typer.Option(help="Course start date, YYYY-MM-DD.")],
    phone: Annotated[str | None, typer.Option(help="Mobile number.")] = None,
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    channel: Annotated[str, typer.Option(help="sms, email or both.")] = "sms",
    weeks: Annotated[int, typer.Option(help="Planned length in weeks.")] = 20,
    locale: Annotated[str, typer.Option(help="en or es.")] = "en",
    ipledge: Annotated[bool, typer.Option("--ipledge", help="Plan the iPLEDGE steps.")] = False,
    fmt: FormatOption = Format.text,
) -> None:
    """Enroll a patient with a course starting on START."""
    from reminders.services import enroll as enroll_patient
    from reminders.services import get_clinic

    rt = runtime()
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
    }
    with clear_errors(), session_scope(rt.engine) as session:
        found = get_clinic(session, clinic)
        patient, course = enroll_patient(
            session, clinic=found, raw=raw, source="staff", ctx=rt.context(utcnow())
        )
        data = {"patient_id": patient.id, "course_id": course.id}
    emit(fmt, data, lambda: f"patient {data['patient_id']} enrolled, course {data['course_id']}")


@app.command("import")
def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV file with a header row.", exists=True, dir_okay=False, readable=True
        ),
    ],
    clinic: Annotated[int, typer.Option(help="Clinic id.")],
    fmt: FormatOption = Format.text,
) -> None:
    """Enroll every valid row of a CSV file; list each invalid row with its reason."""
    from rich.progress import Progress

    from reminders.importer import import_csv
    from reminders.services import get_clinic

    rt = runtime()
    data = file.read_bytes()
    with (
        clear_errors(),
        session_scope(rt.engine) as session,
        Progress(transient=True, disable=not sys.stderr.isatty() or fmt == Format.json) as bar,
    ):
        found = get_clinic(session, clinic)
        task = bar.add_task("importing", total=None)
        report = import_csv(
            session,
            clinic=found,
            data=data,
            source="import",
            ctx=rt.context(utcnow()),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    result = {"enrolled": report.enrolled, "errors": [vars(e) for e in report.errors]}

    def text() -> str:
        lines = [f"{len(report.enrolled)} enrolled, {len(report.errors)} rejected"]
        lines += [f"row {e.row}: {e.field}: {e.reason}" for e in report.errors]
        return "\n".join(lines)

    emit(fmt, result, text)
    if report.errors:
        raise typer.Exit(1)


@app.command()
def preview(
    course: Annotated[int | None, typer.Option(help="An enrolled course's id.")] = None,
    start: Annotated[str | None, typer.Option(help="Start date (no database needed).")] = None,
    tz: Annotated[str, typer.Option(help="Time zone.")] = "America/New_York",
    weeks: Annotated[int, typer.Option(help="Planned weeks.")] = 20,
    ipledge: Annotated[bool, typer.Option("--ipledge")] = False,
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
    with clear_errors():
        if course is not None:
            with session_scope(rt.engine) as session:
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
        lines = []
        for e in entries:
            lines.append(
                f"{e['local_time'][:16].replace('T', ' ')}  {e['channel']:5}  "
                f"{e['status']:9} {','.join(e['topics'])}  ({e['key']})"
            )
            if e.get("subject"):
                lines.append(f"    Subject: {e['subject']}")
            lines.append(f"    {e['body']}")
        return "\n".join(lines)

    emit(fmt, entries, text)


@app.command("send-due")
def send_due_command() -> None:
    """Plan, then send every message that is due now, and exit."""
    from reminders.worker import send_due

    rt = runtime()
    with clear_errors():
        report = send_due(rt)
    typer.echo(", ".join(f"{k} {v}" for k, v in vars(report).items() if v) or "nothing due")


@app.command()
def worker() -> None:
    """Run the background worker (planner, dispatcher, reaper) until SIGTERM."""
    from reminders.channels.registry import build_transports
    from reminders.worker import run

    rt = runtime()
    with clear_errors():
        build_transports(rt.settings)  # a missing provider setting stops the start, clearly
    init_error_reports(rt.settings, process="worker")
    run(rt)


@app.command()
def status() -> None:
    """Backlog and live workers; exits 1 when messages are overdue or no worker is alive."""
    from reminders.status import collect, render

    rt = runtime()
    with session_scope(rt.engine) as session:
        report = collect(session, now=utcnow())
    typer.echo(render(report))
    if not report.healthy:
        raise typer.Exit(1)


@app.command()
def demo(
    days: Annotated[int, typer.Option(help="Days of the course to play.")] = 240,
) -> None:
    """A tour on a throw-away database: a clinic, three patients, a course played on a clock."""
    from reminders.demo import run_demo

    run_demo(days=days)


def _course_action(course_id: int, action: Callable[..., Any], **kwargs: Any) -> None:
    from reminders.services import get_course

    rt = runtime()
    with clear_errors(), session_scope(rt.engine) as session:
        found = get_course(session, course_id=course_id)
        action(session, course=found, ctx=rt.context(utcnow()), **kwargs)
        typer.echo(f"course {course_id}: {found.status}")


@course_app.command("pause")
def course_pause(course_id: int) -> None:
    """Pause a course: pending messages are cancelled until it resumes."""
    from reminders.services import pause_course

    _course_action(course_id, pause_course)


@course_app.command("resume")
def course_resume(course_id: int) -> None:
    """Resume a paused course from today."""
    from reminders.services import resume_course

    _course_action(course_id, resume_course)


@course_app.command("stop")
def course_stop(course_id: int) -> None:
    """Stop a course for good: pending messages are cancelled."""
    from reminders.services import stop_course

    _course_action(course_id, stop_course)


@course_app.command("end")
def course_end(course_id: int, last_dose: Annotated[str, typer.Option(help="YYYY-MM-DD")]) -> None:
    """Record the last dose; after-course messages are planned from it."""
    from reminders.services import end_course

    _course_action(course_id, end_course, last_dose_date=last_dose)


@course_app.command("set-start")
def course_set_start(
    course_id: int,
    start: Annotated[str | None, typer.Option(help="New start date.")] = None,
    weeks: Annotated[int | None, typer.Option(help="New planned length.")] = None,
) -> None:
    """Move the start date or the planned length; only pending messages move."""
    from reminders.services import change_course

    if start is None and weeks is None:
        fail("start: give --start or --weeks")
    _course_action(course_id, change_course, start_date=start, weeks=weeks)


@course_app.command("record-test")
def course_record_test(
    course_id: int, on: Annotated[str, typer.Option("--date", help="Specimen date, YYYY-MM-DD.")]
) -> None:
    """Record a pregnancy test: the iPLEDGE countdown starts from its date."""
    from reminders.services import record_event

    _course_action(course_id, record_event, type="pregnancy_test", on=on)


@app.command()
def web(
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on.")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
) -> None:
    """Run the web process: clinic API, Twilio webhooks, unsubscribe links, health, metrics."""
    import uvicorn

    from reminders.api import create_app

    rt = runtime()
    init_error_reports(rt.settings, process="web")
    # log_config=None leaves logging as set up above, so uvicorn's lines are masked too.
    uvicorn.run(create_app(rt), host=host, port=port, log_config=None)


def main() -> None:
    logging.captureWarnings(True)
    app()


if __name__ == "__main__":
    main()
