"""`reminders clinic ...`: clinics, their API keys and their retention setting."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reminders.cli.base import (
    FLAGS,
    ClinicArgument,
    ClinicOption,
    Format,
    FormatOption,
    clear_errors,
    clinic_app,
    command_scope,
    emit,
    fail,
    key_app,
    runtime,
)
from reminders.clock import as_utc, utcnow
from reminders.db import session_scope
from reminders.models import ApiKey, Clinic

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
    with clear_errors(FLAGS), session_scope(rt.engine) as session:
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
    clinic_id: ClinicArgument,
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
    with command_scope(FLAGS) as scope:
        found = get_clinic(scope.session, clinic_id)
        clinic = update_clinic(scope.session, clinic=found, changes=changes)
        data = _clinic_data(clinic)

    def text() -> str:
        notify = data["notify_email"] or "nobody"
        return (
            f"clinic {data['id']} updated: {data['name']}, help phone {data['help_contact']}, "
            f"new replies told to {notify}"
        )

    emit(fmt, data, text)


@clinic_app.command("rotate-key")
def clinic_rotate_key(clinic_id: ClinicArgument, fmt: FormatOption = Format.text) -> None:
    """Replace the clinic's default API key; it stops working at once, other keys do not."""
    from reminders.services import get_clinic, rotate_api_key

    with command_scope() as scope:
        get_clinic(scope.session, clinic_id)
        key = rotate_api_key(scope.session, clinic_id=clinic_id, now=scope.now)
        scope.audit("key.rotate", clinic_id=clinic_id, detail="default")
    emit(fmt, {"id": clinic_id, "api_key": key}, lambda: f"new API key (shown once): {key}")


@clinic_app.command("retention")
def clinic_retention(
    clinic_id: ClinicArgument,
    days: Annotated[
        int,
        typer.Option(help="Erase patients this many days after their courses ended; 0: never."),
    ],
) -> None:
    """Set how long a clinic keeps a patient's record after their last course ended."""
    from reminders.services import get_clinic
    from reminders.validation import InvalidInput

    with command_scope() as scope:
        if not 0 <= days <= 36_500:
            raise InvalidInput.one("days", "must be 0 (never) to 36500")
        clinic = get_clinic(scope.session, clinic_id)
        clinic.retention_days = days or None
        scope.session.add(clinic)
        scope.audit(
            "clinic.retention", clinic_id=clinic_id, detail=f"{days} days" if days else "kept"
        )
    said = f"after {days} days" if days else "never"
    typer.echo(f"clinic {clinic_id}: finished patients are erased {said}")


def _key_data(key: ApiKey) -> dict[str, object]:
    def when(value: object) -> str | None:
        return as_utc(value).isoformat() if value is not None else None  # type: ignore[arg-type]

    return {
        "id": key.id,
        "name": key.name,
        "admin": key.admin,
        "created_at": when(key.created_at),
        "last_used_at": when(key.last_used_at),
        "revoked_at": when(key.revoked_at),
    }


@key_app.command("add")
def key_add(
    clinic: ClinicOption,
    name: Annotated[str, typer.Option(help="The integration the key is for, e.g. ehr-sync.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="May also erase patients and read the audit trail.")
    ] = False,
    fmt: FormatOption = Format.text,
) -> None:
    """Create a named API key for one integration; printed once, stored only as a hash."""
    from reminders.services import create_api_key, get_clinic

    with command_scope() as scope:
        get_clinic(scope.session, clinic)
        row, key = create_api_key(
            scope.session, clinic_id=clinic, name=name, admin=admin, now=scope.now
        )
        scope.audit("key.create", clinic_id=clinic, detail=row.name)
        data = {**_key_data(row), "api_key": key}
    emit(
        fmt, data, lambda: f"key {data['id']} ({data['name']}) created\nAPI key (shown once): {key}"
    )


@key_app.command("list")
def key_list(clinic: ClinicOption, fmt: FormatOption = Format.text) -> None:
    """The clinic's keys: name, rights, when created, last used and revoked (never the key)."""
    from reminders.services import get_clinic, list_api_keys

    with command_scope() as scope:
        get_clinic(scope.session, clinic)
        keys = [_key_data(key) for key in list_api_keys(scope.session, clinic_id=clinic)]

    def text() -> str:
        lines = []
        for key in keys:
            state = f"revoked {key['revoked_at']}" if key["revoked_at"] else "active"
            rights = "admin" if key["admin"] else "staff"
            used = key["last_used_at"] or "never"
            lines.append(f"{key['id']}  {key['name']}  {rights}  {state}  last used {used}")
        return "\n".join(lines) or "no keys"

    emit(fmt, keys, text)


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[int, typer.Argument(help="Key id (from `reminders clinic key list`).")],
    clinic: ClinicOption,
) -> None:
    """Revoke one key: it answers 401 at once; the clinic's other keys keep working."""
    from reminders.services import revoke_api_key

    with command_scope() as scope:
        key = revoke_api_key(scope.session, clinic_id=clinic, key_id=key_id, now=scope.now)
        scope.audit("key.revoke", clinic_id=clinic, detail=key.name)
    typer.echo(f"key {key_id} revoked")
