"""`reminders clinic ...` and `reminders staff ...`: clinics, their keys, their staff."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reminders.cli.base import (
    Format,
    FormatOption,
    clear_errors,
    clinic_app,
    emit,
    fail,
    runtime,
    staff_app,
)
from reminders.clock import utcnow
from reminders.db import session_scope
from reminders.models import Clinic

HelpContact = Annotated[
    str,
    typer.Option(
        help="The phone patients call about anything urgent (national or +E.164); every "
        "automatic answer to a text gives it."
    ),
]
NotifyEmail = Annotated[
    str | None,
    typer.Option(help="Where staff are told of new replies from patients ('' to stop)."),
]


def _clinic_data(clinic: Clinic) -> dict[str, Any]:
    return {
        "id": clinic.id,
        "name": clinic.name,
        "timezone": clinic.timezone,
        "help_contact": clinic.help_contact,
        "notify_email": clinic.notify_email,
    }


@clinic_app.command("add")
def clinic_add(
    name: Annotated[str, typer.Option(help="The clinic's name, as patients know it.")],
    help_contact: HelpContact,
    tz: Annotated[str, typer.Option(help="Default IANA time zone.")] = "America/New_York",
    region: Annotated[str, typer.Option(help="Region for national phone numbers.")] = "US",
    notify_email: NotifyEmail = None,
    send_time: Annotated[str, typer.Option(help="Local time messages go out.")] = "10:00",
    no_ipledge: Annotated[
        bool, typer.Option("--no-ipledge", help="Never plan iPLEDGE steps.")
    ] = False,
    sms_name: Annotated[
        str | None,
        typer.Option(
            help="The name SMS give, at most 20 characters (default: the name, or its first "
            "words when it is longer)."
        ),
    ] = None,
    home_tests: Annotated[
        bool,
        typer.Option(
            "--home-tests", help="The prescriber allows monthly checks to be taken at home."
        ),
    ] = False,
    no_lab_reminders: Annotated[
        bool, typer.Option("--no-lab-reminders", help="Leave out the early lab reminder.")
    ] = False,
    fmt: FormatOption = Format.text,
) -> None:
    """Create a clinic; prints its id, the name its SMS give, and its API key (shown once)."""
    from reminders.services import create_clinic

    rt = runtime()
    with clear_errors(), session_scope(rt.engine) as session:
        clinic, key = create_clinic(
            session,
            name=name,
            timezone=tz,
            region=region,
            help_contact=help_contact,
            notify_email=notify_email,
            send_time=send_time,
            ipledge=not no_ipledge,
            sms_name=sms_name,
            home_tests=home_tests,
            lab_reminders=not no_lab_reminders,
            now=utcnow(),
        )
        session.flush()
        data = {**_clinic_data(clinic), "sms_name": clinic.sms_name, "api_key": key}
    emit(
        fmt,
        data,
        lambda: (
            f"clinic {data['id']} created, SMS name {data['sms_name']}, "
            f"help phone {data['help_contact']}\n"
            f"API key (shown once): {key}"
        ),
    )


@clinic_app.command("update")
def clinic_update(
    clinic_id: Annotated[int, typer.Argument(help="Clinic id.")],
    name: Annotated[str | None, typer.Option(help="The clinic's name.")] = None,
    tz: Annotated[str | None, typer.Option(help="Default IANA time zone.")] = None,
    help_contact: Annotated[
        str | None, typer.Option(help="The phone patients call about anything urgent.")
    ] = None,
    notify_email: NotifyEmail = None,
    fmt: FormatOption = Format.text,
) -> None:
    """Change a clinic's name, zone, help phone or the email that hears of new replies."""
    from reminders.services import get_clinic, update_clinic

    given = {"name": name, "timezone": tz, "help_contact": help_contact}
    changes: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    if notify_email is not None:
        changes["notify_email"] = notify_email
    if not changes:
        fail("clinic: give at least one of --name, --tz, --help-contact, --notify-email")
    rt = runtime()
    with clear_errors(), session_scope(rt.engine) as session:
        clinic = update_clinic(session, clinic=get_clinic(session, clinic_id), changes=changes)
        data = _clinic_data(clinic)

    def text() -> str:
        notify = data["notify_email"] or "nobody"
        return (
            f"clinic {data['id']} updated: {data['name']}, help phone {data['help_contact']}, "
            f"new replies told to {notify}"
        )

    emit(fmt, data, text)


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
