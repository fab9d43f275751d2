"""`reminders staff ...`: the staff users who sign in to the clinic pages."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.audit import Actor, record
from reminders.cli.base import Format, FormatOption, clear_errors, emit, runtime, staff_app
from reminders.clock import as_utc, utcnow
from reminders.db import session_scope
from reminders.models import StaffRole

PasswordOption = Annotated[
    str,
    typer.Option(
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="At least 12 characters, not a common one; asked for twice (not shown) if not given.",
    ),
]
UserArgument = Annotated[int, typer.Argument(help="Staff user id (from `reminders staff list`).")]


@staff_app.command("add")
def staff_add(
    clinic: Annotated[int, typer.Option(help="Clinic id.")],
    email: Annotated[str, typer.Option(help="The staff member's email; they sign in with it.")],
    password: PasswordOption,
    role: Annotated[
        StaffRole, typer.Option(help="admin: also staff accounts, API keys, the audit trail.")
    ] = StaffRole.staff,
) -> None:
    """Add a staff user to a clinic, who can then sign in at /clinic."""
    from reminders.staff import create_staff

    rt = runtime()
    now = utcnow()
    with clear_errors(), session_scope(rt.engine) as session:
        user = create_staff(
            session, clinic_id=clinic, email=email, password=password, role=role, now=now
        )
        record(
            session,
            clinic_id=clinic,
            actor=Actor.command_line(),
            action="staff.add",
            now=now,
            detail=f"user {user.id} as {user.role}",
        )
        user_id = user.id
    typer.echo(f"staff user {user_id} added to clinic {clinic} as {role.value}")


def _change(user_id: int, action: str, change: str) -> None:
    from reminders.staff import get_staff, set_disabled

    rt = runtime()
    now = utcnow()
    with clear_errors(), session_scope(rt.engine) as session:
        user = get_staff(session, user_id=user_id)
        ended = set_disabled(session, user=user, disabled=change == "disabled", now=now)
        record(
            session,
            clinic_id=user.clinic_id,
            actor=Actor.command_line(),
            action=action,
            now=now,
            detail=f"user {user_id}",
        )
    extra = f", {ended} sessions ended" if change == "disabled" else ""
    typer.echo(f"staff user {user_id} {change}{extra}")


@staff_app.command("disable")
def staff_disable(user_id: UserArgument) -> None:
    """Stop a user from signing in; their sessions end at once."""
    _change(user_id, "staff.disable", "disabled")


@staff_app.command("enable")
def staff_enable(user_id: UserArgument) -> None:
    """Let a disabled user sign in again."""
    _change(user_id, "staff.enable", "enabled")


@staff_app.command("reset-password")
def staff_reset_password(user_id: UserArgument, password: PasswordOption) -> None:
    """Give a user a new password; every session of theirs ends."""
    from reminders.staff import get_staff, reset_password

    rt = runtime()
    now = utcnow()
    with clear_errors(), session_scope(rt.engine) as session:
        user = get_staff(session, user_id=user_id)
        ended = reset_password(session, user=user, password=password)
        record(
            session,
            clinic_id=user.clinic_id,
            actor=Actor.command_line(),
            action="staff.reset_password",
            now=now,
            detail=f"user {user_id}",
        )
    typer.echo(f"staff user {user_id} has a new password, {ended} sessions ended")


@staff_app.command("list")
def staff_list(
    clinic: Annotated[int | None, typer.Option(help="Only this clinic's users.")] = None,
    fmt: FormatOption = Format.text,
) -> None:
    """The staff users: id, clinic, email, role, two-factor and whether disabled."""
    from reminders.staff import list_staff

    rt = runtime()
    with clear_errors(), session_scope(rt.engine) as session:
        users = [
            {
                "id": user.id,
                "clinic_id": user.clinic_id,
                "email": user.email,
                "role": user.role,
                "two_factor": user.totp_secret is not None,
                "disabled_at": as_utc(user.disabled_at).isoformat() if user.disabled_at else None,
            }
            for user in list_staff(session, clinic_id=clinic)
        ]

    def text() -> str:
        lines = [
            f"{u['id']}  clinic {u['clinic_id']}  {u['email']}  {u['role']}"
            f"{'  two-factor' if u['two_factor'] else ''}"
            f"{'  disabled' if u['disabled_at'] else ''}"
            for u in users
        ]
        return "\n".join(lines) or "no staff users"

    emit(fmt, users, text)
