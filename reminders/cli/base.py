"""What every `reminders` command shares: the app, output formats, the options many commands
take, clear one-line errors, and the opening of a command that works on the database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer
from sqlmodel import Session

from reminders.audit import Actor, record
from reminders.careplan import CarePlanError
from reminders.clock import utcnow
from reminders.config import ConfigError, get_settings
from reminders.db import read_scope, session_scope
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
key_app = typer.Typer(help="A clinic's API keys, one per integration.", no_args_is_help=True)
clinic_app.add_typer(key_app, name="key")
patient_app = typer.Typer(help="A patient's record: contacts, erasure.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(clinic_app, name="clinic")
app.add_typer(patient_app, name="patient")
app.add_typer(course_app, name="course")
staff_app = typer.Typer(help="Staff users who sign in to the clinic pages.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")


class Format(StrEnum):
    text = "text"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]
ClinicOption = Annotated[int, typer.Option(help="Clinic id.")]
ClinicArgument = Annotated[int, typer.Argument(help="Clinic id.")]
PatientArgument = Annotated[int, typer.Argument(help="Patient id.")]


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, a non-zero exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# The services name the fields as the API does; a command names the flag the user typed.
FLAGS = {
    "first_name": "--first-name",
    "last_name": "--last-name",
    "date_of_birth": "--date-of-birth",
    "external_id": "--external-id",
    "phone": "--phone",
    "email": "--email",
    "channel": "--channel",
    "timezone": "--tz",
    "start_date": "--start",
    "weeks": "--weeks",
    "locale": "--locale",
    "ipledge": "--ipledge",
    "last_dose_date": "--last-dose",
    "date": "--date",
    "help_contact": "--help-contact",
    "notify_email": "--notify-email",
    "sms_name": "--sms-name",
    "name": "--name",
    "region": "--region",
    "send_time": "--send-time",
    "tz": "--tz",
    "start": "--start",
    "last_dose": "--last-dose",
    "pregnancy_test": "--pregnancy-test",
}


@contextmanager
def clear_errors(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn the errors a user can fix into one line naming the field (by the flag that set
    it, with `flags`), and exit non-zero."""
    names = flags or {}
    try:
        yield
    except InvalidInput as exc:
        fail("; ".join(f"{names.get(e.field, e.field)}: {e.reason}" for e in exc.errors))
    except Conflict as exc:
        fail(f"{names.get(exc.field, exc.field)}: {exc.reason}")
    except (ConfigError, CarePlanError) as exc:
        fail(str(exc))
    except NotFound as exc:
        fail(str(exc), code=3)


# Runtimes built by the running command: their connections close when it ends.
_built: list[Runtime] = []


@app.callback()
def _command(context: typer.Context) -> None:
    context.call_on_close(_close_runtimes)


def _close_runtimes() -> None:
    while _built:
        _built.pop().engine.dispose()


def runtime() -> Runtime:
    """The command's runtime; its database connections close when the command ends."""
    with clear_errors():
        settings = get_settings()
        setup_logging(settings)
        rt = build(settings)
    _built.append(rt)
    return rt


@dataclass(frozen=True)
class CommandScope:
    """What a command works with inside its transaction: the runtime, the session, and the
    moment the command began (its audit entries and plans are dated by it)."""

    rt: Runtime
    session: Session
    now: datetime

    def audit(
        self, action: str, *, clinic_id: int, patient_id: int | None = None, detail: str = ""
    ) -> None:
        """Add the command's entry to the clinic's audit trail, in this transaction."""
        record(
            self.session,
            clinic_id=clinic_id,
            actor=Actor.command_line(),
            action=action,
            now=self.now,
            patient_id=patient_id,
            detail=detail,
        )


@contextmanager
def command_scope(
    flags: Mapping[str, str] | None = None, *, read_only: bool = False
) -> Iterator[CommandScope]:
    """The runtime, then one transaction (committed when the block ends; with `read_only`, a
    read that takes no write lock) whose user errors become one clear line (see clear_errors)."""
    rt = runtime()
    now = utcnow()
    scope = read_scope if read_only else session_scope
    with clear_errors(flags), scope(rt.engine) as session:
        yield CommandScope(rt=rt, session=session, now=now)


def emit(fmt: Format, data: Any, text: Callable[[], str]) -> None:
    if fmt == Format.json:
        typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        typer.echo(text())
