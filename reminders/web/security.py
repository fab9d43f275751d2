"""Who is signed in, the session cookie, roles, and the CSRF check on every form.

The session lives on the server (reminders.sessions): the cookie holds only a random token.
Before signing in, a visitor holds a second cookie with a random value, and the sign-in
form's CSRF token is that value signed with SECRET_KEY (a signed double-submit token), so
no row is written for a visitor who has not given a right password. Both cookies are
HttpOnly and SameSite=Lax always, and Secure when PUBLIC_BASE_URL is https: a Secure cookie
is never sent over plain http, so a local run or the tests on http://127.0.0.1 would
otherwise never stay signed in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import FormData

from reminders.audit import Actor
from reminders.config import Settings
from reminders.db import read_scope, session_scope
from reminders.deps import AddressDep, NowDep, RuntimeDep
from reminders.models import StaffRole, StaffUser
from reminders.runtime import Runtime
from reminders.services import get_clinic, unread_count
from reminders.services.worklist import Item, worklist
from reminders.sessions import Lifetime, resume_session

PREFIX = "/clinic"
SESSION_COOKIE = "reminders_session"
SIGN_IN_COOKIE = "reminders_sign_in"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No valid session: the visitor is sent to the sign-in page."""


class PageNotFound(Exception):
    """No such record in the signed-in clinic (or in any): one 404 page for both."""


class CsrfRejected(Exception):
    """A form sent without this session's CSRF token."""


class AdminOnly(Exception):
    """A page for the clinic's admins, asked for by a staff user."""


@dataclass(frozen=True)
class Staff:
    """The signed-in staff user and their clinic, read once per request."""

    user_id: int
    email: str
    role: StaffRole
    clinic_id: int
    clinic_name: str
    clinic_timezone: str
    address: str
    unread_replies: int = 0  # shown in the navigation of every page
    worklist: int = 0  # items on the clinic's worklist, likewise
    worklist_overdue: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.admin

    @property
    def actor(self) -> Actor:
        """This user as the audit trail names them."""
        return Actor(kind="user", name=self.email, address=self.address)


@dataclass
class Visit:
    """What the request's cookies say: the signed-in user, or a visitor on their way in."""

    csrf: str
    staff: Staff | None = None
    token: str | None = None  # the session cookie's token, when it names a live session
    second_factor_user: int | None = None  # password right, code still due
    flash: str | None = None
    new_sign_in_cookie: str | None = None  # to set on the response
    cookies_to_clear: list[str] = dataclasses.field(default_factory=list)


def _secret(settings: Settings) -> bytes:
    # A key of its own derived from SECRET_KEY, so a form token and an unsubscribe token can
    # never be swapped for one another.
    secret = settings.secret_key.get_secret_value()
    return hashlib.sha256(f"reminders.web.sign-in:{secret}".encode()).digest()


def visitor_csrf(settings: Settings, value: str) -> str:
    """The sign-in form's token for the visitor cookie `value`."""
    return hmac.new(_secret(settings), value.encode(), hashlib.sha256).hexdigest()


def _staff(user: StaffUser, session: object, address: str) -> Staff:
    clinic = get_clinic(session, user.clinic_id)  # type: ignore[arg-type]
    return Staff(
        user_id=user.id,  # type: ignore[arg-type]
        email=user.email,
        role=StaffRole(user.role),
        clinic_id=clinic.id,  # type: ignore[arg-type]
        clinic_name=clinic.name,
        clinic_timezone=clinic.timezone,
        address=address,
        unread_replies=unread_count(session, clinic_id=clinic.id),  # type: ignore[arg-type]
    )


def clinic_worklist(session: Session, rt: Runtime, staff: Staff, now: datetime) -> list[Item]:
    """What needs a person at the staff member's clinic, by the care plan and reply window."""
    return worklist(
        session,
        clinic_id=staff.clinic_id,
        now=now,
        careplan=rt.careplan,
        reply_hours=rt.settings.worklist_reply_hours,
    )


def _with_worklist(staff: Staff, rt: Runtime, now: datetime) -> Staff:
    """The staff member with their clinic's worklist counts, read after the session's own
    short write, in a read-only transaction of their own."""
    with read_scope(rt.engine) as session:
        items = clinic_worklist(session, rt, staff, now)
    overdue = sum(item.overdue for item in items)
    return dataclasses.replace(staff, worklist=len(items), worklist_overdue=overdue)


def current_visit(request: Request, rt: RuntimeDep, now: NowDep, address: AddressDep) -> Visit:
    """The request's session (seen now, so its idle time starts again), or a visitor's state."""
    token = request.cookies.get(SESSION_COOKIE)
    visit: Visit | None = None
    if token:
        with session_scope(rt.engine) as session:
            row = resume_session(session, token, now=now, lifetime=Lifetime.of(rt.settings))
            user = session.get(StaffUser, row.user_id) if row is not None else None
            if row is not None and (user is None or user.disabled_at is not None):
                session.delete(row)
                row = None
            if row is not None and user is not None:
                visit = Visit(csrf=row.csrf_token, token=token, flash=row.flash)
                row.flash = None
                if row.second_factor_due:
                    visit.second_factor_user = user.id
                else:
                    visit.staff = _staff(user, session, address)
        if visit is not None and visit.staff is not None:
            visit.staff = _with_worklist(visit.staff, rt, now)
        if visit is None:
            visit = visitor(request, rt.settings)
            visit.cookies_to_clear.append(SESSION_COOKIE)
    if visit is None:
        visit = visitor(request, rt.settings)
    request.state.visit = visit
    request.state.staff = visit.staff  # for the error pages' navigation
    return visit


def visitor(request: Request, settings: Settings) -> Visit:
    """A visitor who is not signed in, with the sign-in form's token for their cookie."""
    value = request.cookies.get(SIGN_IN_COOKIE)
    fresh = None
    if not value or len(value) > 100:
        value = fresh = secrets.token_urlsafe(32)
    return Visit(csrf=visitor_csrf(settings, value), new_sign_in_cookie=fresh)


VisitDep = Annotated[Visit, Depends(current_visit)]


def signed_in(visit: VisitDep) -> Staff:
    """The signed-in staff user; SignInRequired without a live session."""
    if visit.staff is None:
        raise SignInRequired()
    return visit.staff


StaffDep = Annotated[Staff, Depends(signed_in)]


def admin(staff: StaffDep) -> Staff:
    """The signed-in user, when an admin of their clinic; AdminOnly (403) otherwise."""
    if not staff.is_admin:
        raise AdminOnly()
    return staff


AdminDep = Annotated[Staff, Depends(admin)]


def set_cookies(response: Response, visit: Visit | None, settings: Settings) -> None:
    """Put the visit's new cookies on the response, and take away those that mean nothing."""
    if visit is None:
        return
    for name in visit.cookies_to_clear:
        response.delete_cookie(name, path=PREFIX)
    if visit.new_sign_in_cookie:
        _cookie(response, SIGN_IN_COOKIE, visit.new_sign_in_cookie, settings)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    _cookie(response, SESSION_COOKIE, token, settings)


def _cookie(response: Response, name: str, value: str, settings: Settings) -> None:
    response.set_cookie(
        name,
        value,
        # The browser may forget it sooner; the server ends the session at its own time.
        max_age=int(settings.session_max_hours * 3600),
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=settings.https,
    )


async def checked_form(request: Request, visit: VisitDep) -> AsyncIterator[FormData]:
    """The posted form, only when it carries this visit's CSRF token (403 otherwise)."""
    async with request.form(max_files=1, max_fields=30) as form:
        sent = form.get(CSRF_FIELD)
        if not (isinstance(sent, str) and hmac.compare_digest(sent.encode(), visit.csrf.encode())):
            raise CsrfRejected()
        yield form


FormDep = Annotated[FormData, Depends(checked_form)]


def field(form: FormData, name: str) -> str:
    """A text field of the form, stripped; '' when missing or a file."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a clinic page of this site, never another host."""
    if target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX
