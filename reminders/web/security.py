"""Who is signed in, the session cookie, and the CSRF check on every form.

The session lives in a cookie signed with SECRET_KEY (Starlette's SessionMiddleware): it
holds the staff user's id, a stamp of their password hash (a new password signs every
session out) and the CSRF token. The cookie is HttpOnly and SameSite=Lax always, and Secure
when PUBLIC_BASE_URL is https: a Secure cookie is never sent over plain http, so a local run
or the tests on http://127.0.0.1 would otherwise never stay signed in.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.datastructures import FormData
from starlette.middleware.sessions import SessionMiddleware

from reminders.config import Settings
from reminders.db import read_scope
from reminders.deps import RuntimeDep
from reminders.models import StaffUser
from reminders.services import get_clinic, unread_count
from reminders.staff import session_stamp

log = logging.getLogger(__name__)

PREFIX = "/clinic"
SESSION_COOKIE = "reminders_session"
SESSION_MAX_AGE = 12 * 60 * 60  # a working day; the cookie is re-signed on every change
CSRF_FIELD = "csrf_token"
DEFAULT_SECRET = "change-me"


class SignInRequired(Exception):
    """No valid session: the visitor is sent to the sign-in page."""


class PageNotFound(Exception):
    """No such record in the signed-in clinic (or in any): one 404 page for both."""


class CsrfRejected(Exception):
    """A form sent without this session's CSRF token."""


@dataclass(frozen=True)
class Staff:
    """The signed-in staff user and their clinic, read once per request."""

    user_id: int
    email: str
    clinic_id: int
    clinic_name: str
    clinic_timezone: str
    unread_replies: int = 0  # shown in the navigation of every page


def session_secret(settings: Settings) -> str:
    # Its own key derived from SECRET_KEY, so a session cookie and an unsubscribe token
    # can never be swapped for one another.
    secret = settings.secret_key.get_secret_value()
    return hashlib.sha256(f"reminders.web.session:{secret}".encode()).hexdigest()


def add_sessions(app: FastAPI, settings: Settings) -> None:
    """The signed session cookie, scoped to the clinic pages."""
    secure = (settings.public_base_url or "").lower().startswith("https://")
    if secure and settings.secret_key.get_secret_value() == DEFAULT_SECRET:
        log.warning("SECRET_KEY is the default: set a long random value before going live")
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        path=PREFIX,
        same_site="lax",
        https_only=secure,
    )


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use (the sign-in form has one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def sign_in(request: Request, user: StaffUser) -> None:
    """Start a fresh session for `user`, with a new CSRF token."""
    request.session.clear()
    request.session.update(
        staff_id=user.id, stamp=session_stamp(user), csrf=secrets.token_urlsafe(32)
    )


def signed_in(request: Request, rt: RuntimeDep) -> Staff:
    """The signed-in staff user; SignInRequired without a valid session."""
    user_id = request.session.get("staff_id")
    if not isinstance(user_id, int):
        raise SignInRequired()
    with read_scope(rt.engine) as session:
        user = session.get(StaffUser, user_id)
        if user is None or session_stamp(user) != request.session.get("stamp"):
            request.session.clear()
            raise SignInRequired()
        clinic = get_clinic(session, user.clinic_id)
        staff = Staff(
            user_id=user_id,
            email=user.email,
            clinic_id=clinic.id,  # type: ignore[arg-type]
            clinic_name=clinic.name,
            clinic_timezone=clinic.timezone,
            unread_replies=unread_count(session, clinic_id=clinic.id),
        )
    request.state.staff = staff  # for the error pages' navigation
    return staff


StaffDep = Annotated[Staff, Depends(signed_in)]


async def checked_form(request: Request) -> AsyncIterator[FormData]:
    """The posted form, only when it carries this session's CSRF token (403 otherwise)."""
    async with request.form(max_files=1, max_fields=30) as form:
        sent = form.get(CSRF_FIELD)
        expected = request.session.get("csrf")
        if not (
            isinstance(sent, str)
            and isinstance(expected, str)
            and hmac.compare_digest(sent.encode(), expected.encode())
        ):
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
