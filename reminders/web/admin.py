"""The clinic admin's pages: staff accounts, API keys and the audit trail (403 for staff)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from reminders.audit import record_by, trail
from reminders.db import read_scope, session_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.models import StaffRole, StaffUser
from reminders.runtime import Runtime
from reminders.services import (
    Conflict,
    NotFound,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from reminders.sessions import end_user_sessions, live_sessions
from reminders.staff import (
    check_not_self,
    create_staff,
    get_staff,
    list_staff,
    reset_password,
    set_disabled,
)
from reminders.validation import InvalidInput
from reminders.web.addresses import listed, path_id
from reminders.web.pages import errors_by_field, redirect, render
from reminders.web.security import PREFIX, AdminDep, FormDep, PageNotFound, Staff, field

router = APIRouter(prefix=PREFIX, include_in_schema=False)

STAFF_PAGE = f"{PREFIX}/staff"
KEYS_PAGE = f"{PREFIX}/keys"
AUDIT_PAGE_SIZE = 50


# -- staff ----------------------------------------------------------------------------------


def _staff_page(
    request: Request,
    rt: Runtime,
    staff: Staff,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    target: int | None = None,
    code: int = 200,
) -> Response:
    with read_scope(rt.engine) as session:
        users = [
            (user, len(live_sessions(session, user_id=user.id)))  # type: ignore[arg-type]
            for user in list_staff(session, clinic_id=staff.clinic_id)
        ]
    return render(
        request,
        "staff.html",
        title="Staff",
        staff=staff,
        code=code,
        users=users,
        roles=[role.value for role in StaffRole],
        errors=errors or {},
        values=values or {"email": "", "role": StaffRole.staff.value},
        target=target,
    )


@router.get("/staff")
def staff_page(request: Request, staff: AdminDep, rt: RuntimeDep) -> Response:
    return _staff_page(request, rt, staff)


@router.post("/staff")
def add_staff(
    request: Request, staff: AdminDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    values = {"email": field(form, "email"), "role": field(form, "role")}
    password = form.get("password")
    try:
        with session_scope(rt.engine) as session:
            user = create_staff(
                session,
                clinic_id=staff.clinic_id,
                email=values["email"],
                password=password if isinstance(password, str) else "",
                role=values["role"],
                now=now,
            )
            record_by(session, staff, "staff.add", now=now, detail=f"user {user.id} as {user.role}")
            email = user.email
    except InvalidInput as exc:
        return _staff_page(
            request, rt, staff, errors=errors_by_field(exc.errors), values=values, code=422
        )
    return redirect(request, STAFF_PAGE, flash=f"{email} can now sign in.")


def _disable(session: Session, staff: Staff, user: StaffUser, form: Any, now: datetime) -> str:
    check_not_self(staff.user_id, user, "disable")
    set_disabled(session, user=user, disabled=True, now=now)
    return f"{user.email} is disabled and signed out everywhere."


def _enable(session: Session, staff: Staff, user: StaffUser, form: Any, now: datetime) -> str:
    set_disabled(session, user=user, disabled=False, now=now)
    return f"{user.email} can sign in again."


def _password(session: Session, staff: Staff, user: StaffUser, form: Any, now: datetime) -> str:
    password = form.get("password")
    reset_password(session, user=user, password=password if isinstance(password, str) else "")
    return f"{user.email} has a new password and is signed out everywhere."


def _sign_out(session: Session, staff: Staff, user: StaffUser, form: Any, now: datetime) -> str:
    ended = end_user_sessions(session, user_id=user.id)  # type: ignore[arg-type]
    return f"{user.email} is signed out everywhere ({ended} sessions)."


# Each action on a staff user by its address under /staff/{id}/, and its audit name.
USER_ACTIONS: dict[str, tuple[str, Callable[[Session, Staff, StaffUser, Any, datetime], str]]] = {
    "disable": ("staff.disable", _disable),
    "enable": ("staff.enable", _enable),
    "password": ("staff.reset_password", _password),
    "sign-out": ("staff.sign_out_everywhere", _sign_out),
}


@router.post("/staff/{user_id}/{name}")
def staff_action(
    request: Request,
    user_id: str,
    name: str,
    staff: AdminDep,
    form: FormDep,
    rt: RuntimeDep,
    now: NowDep,
) -> Response:
    """Disable, enable, reset the password of, or sign out a user of the admin's clinic."""
    action, apply = listed(USER_ACTIONS, name)
    target = path_id(user_id)
    try:
        with session_scope(rt.engine) as session:
            try:
                user = get_staff(session, user_id=target, clinic_id=staff.clinic_id)
            except NotFound:
                raise PageNotFound() from None
            done = apply(session, staff, user, form, now)
            record_by(session, staff, action, now=now, detail=f"user {user.id}")
    except InvalidInput as exc:
        errors = {f"{error.field}-{target}": error.reason for error in exc.errors}
    except Conflict as exc:
        errors = {f"{exc.field}-{target}": exc.reason}
    else:
        if target == staff.user_id and name in ("password", "sign-out"):
            # Their own sessions ended with the others: this one too.
            return redirect(request, f"{PREFIX}/sign-in?notice=everywhere")
        return redirect(request, STAFF_PAGE, flash=done)
    return _staff_page(request, rt, staff, errors=errors, target=target, code=422)


# -- API keys -------------------------------------------------------------------------------


def _keys_page(
    request: Request,
    rt: Runtime,
    staff: Staff,
    *,
    new_key: str | None = None,
    errors: dict[str, str] | None = None,
    name: str = "",
    code: int = 200,
) -> Response:
    with read_scope(rt.engine) as session:
        keys = list_api_keys(session, clinic_id=staff.clinic_id)
    return render(
        request,
        "keys.html",
        title="API keys",
        staff=staff,
        code=code,
        keys=keys,
        new_key=new_key,
        errors=errors or {},
        key_name=name,
    )


@router.get("/keys")
def keys_page(request: Request, staff: AdminDep, rt: RuntimeDep) -> Response:
    return _keys_page(request, rt, staff)


@router.post("/keys")
def add_key(
    request: Request, staff: AdminDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    """Create a key; it is shown on this answer only (the page is never cached)."""
    name = field(form, "name")
    try:
        with session_scope(rt.engine) as session:
            row, key = create_api_key(
                session,
                clinic_id=staff.clinic_id,
                name=name,
                admin=field(form, "admin") == "yes",
                now=now,
            )
            record_by(session, staff, "key.create", now=now, detail=row.name)
    except InvalidInput as exc:
        return _keys_page(
            request, rt, staff, errors=errors_by_field(exc.errors), name=name, code=422
        )
    return _keys_page(request, rt, staff, new_key=key, code=201)


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    request: Request, key_id: str, staff: AdminDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    try:
        with session_scope(rt.engine) as session:
            key = revoke_api_key(
                session, clinic_id=staff.clinic_id, key_id=path_id(key_id), now=now
            )
            record_by(session, staff, "key.revoke", now=now, detail=key.name)
            name = key.name
    except NotFound:
        raise PageNotFound() from None
    except Conflict:
        return redirect(request, KEYS_PAGE, flash="That key was revoked already.")
    return redirect(request, KEYS_PAGE, flash=f"The key {name} is revoked: it no longer works.")


# -- audit trail ----------------------------------------------------------------------------


@router.get("/audit")
def audit_page(request: Request, staff: AdminDep, rt: RuntimeDep, page: int = 1) -> Response:
    """The clinic's audit trail, newest first."""
    page = max(1, min(page, 100_000))
    with read_scope(rt.engine) as session:
        events, total = trail(
            session,
            clinic_id=staff.clinic_id,
            limit=AUDIT_PAGE_SIZE,
            offset=(page - 1) * AUDIT_PAGE_SIZE,
        )
    return render(
        request,
        "audit.html",
        title="Audit trail",
        staff=staff,
        events=events,
        total=total,
        page=page,
        pages=max(1, -(-total // AUDIT_PAGE_SIZE)),
    )
