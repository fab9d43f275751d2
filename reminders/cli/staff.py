"""`reminders staff ...`: the staff users who sign in to the clinic pages."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.cli.base import ClinicOption, Format, FormatOption, command_scope, emit, staff_app
from reminders.clock import as_utc
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
    clinic: ClinicOption,
    email: Annotated[str, typer.Option(help="The staff member's email; they sign in with it.")],
    password: PasswordOption,
    role: Annotated[
        StaffRole, typer.Option(help="admin: also staff accounts, API keys, the audit trail.")
    ] = StaffRole.staff,
) -> None:
    """Add a staff user to a clinic, who can then sign in at /clinic."""
    from reminders.staff import create_staff

    with command_scope() as scope:
        user = create_staff(
            scope.session,
            clinic_id=clinic,
            email=email,
            password=password,
            role=role,
            now=scope.now,
        )
        scope.audit("staff.add", clinic_id=clinic, detail=f"user {user.id} as {user.role}")
        user_id = user.id
    typer.echo(f"staff user {user_id} added to clinic {clinic} as {role.value}")


def _change(user_id: int, action: str, change: str) -> None:
    from reminders.staff import get_staff, set_disabled

    with command_scope() as scope:
        user = get_staff(scope.session, user_id=user_id)
        ended = set_disabled(scope.session, user=user, disabled=change == "disabled", now=scope.now)
        scope.audit(action, clinic_id=user.clinic_id, detail=f"user {user_id}")
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

    with command_scope() as scope:
        user = get_staff(scope.session, user_id=user_id)
        ended = reset_password(scope.session, user=user, password=password)
        scope.audit("staff.reset_password", clinic_id=user.clinic_id, detail=f"user {user_id}")
    typer.echo(f"staff user {user_id} has a new password, {ended} sessions ended")


@staff_app.command("list")
def staff_list(
    clinic: Annotated[int | None, typer.Option(help="Only this clinic's users.")] = None,
    fmt: FormatOption = Format.text,
) -> None:
    """The staff users: id, clinic, email, role, two-factor and whether disabled."""
    from reminders.staff import list_staff

    with command_scope() as scope:
        users = [
            {
                "id": user.id,
                "clinic_id": user.clinic_id,
                "email": user.email,
                "role": user.role,
                "two_factor": user.totp_secret is not None,
                "disabled_at": as_utc(user.disabled_at).isoformat() if user.disabled_at else None,
            }
            for user in list_staff(scope.session, clinic_id=clinic)
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
