"""`reminders course ...`: pause, resume, stop, end, move a course, record a test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from reminders.cli.base import FLAGS, command_scope, course_app, fail
from reminders.models import CourseStatus, Patient


def _course_action(course_id: int, action: Callable[..., Any], name: str, **kwargs: Any) -> None:
    from reminders.services import get_course

    with command_scope(FLAGS) as scope:
        found = get_course(scope.session, course_id=course_id)
        action(scope.session, course=found, ctx=scope.rt.context(scope.now), **kwargs)
        patient = scope.session.get(Patient, found.patient_id)
        assert patient is not None  # a course always has its patient
        scope.audit(
            name, clinic_id=patient.clinic_id, patient_id=patient.id, detail=f"course {course_id}"
        )
        typer.echo(f"course {course_id}: {CourseStatus(found.status).word}")


@course_app.command("pause")
def course_pause(course_id: int) -> None:
    """Pause a course: pending messages are cancelled until it resumes."""
    from reminders.services import pause_course

    _course_action(course_id, pause_course, "course.pause")


@course_app.command("resume")
def course_resume(course_id: int) -> None:
    """Resume a paused course from today."""
    from reminders.services import resume_course

    _course_action(course_id, resume_course, "course.resume")


@course_app.command("stop")
def course_stop(course_id: int) -> None:
    """Stop a course for good: pending messages are cancelled."""
    from reminders.services import stop_course

    _course_action(course_id, stop_course, "course.stop")


@course_app.command("end")
def course_end(course_id: int, last_dose: Annotated[str, typer.Option(help="YYYY-MM-DD")]) -> None:
    """Record the last dose; after-course messages are planned from it."""
    from reminders.services import end_course

    _course_action(course_id, end_course, "course.end", last_dose_date=last_dose)


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
    _course_action(course_id, change_course, "course.change", start_date=start, weeks=weeks)


@course_app.command("record-test")
def course_record_test(
    course_id: int, on: Annotated[str, typer.Option("--date", help="Specimen date, YYYY-MM-DD.")]
) -> None:
    """Record a pregnancy test: the iPLEDGE countdown starts from its date."""
    from reminders.services import record_event

    _course_action(course_id, record_event, "course.event", type="pregnancy_test", on=on)
