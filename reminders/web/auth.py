"""Signing in (password, then the authenticator's code when the user has one) and out."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from reminders import throttle
from reminders.audit import Actor, record, record_by
from reminders.db import session_scope
from reminders.deps import AddressDep, NowDep, RuntimeDep
from reminders.metrics import WebMetrics
from reminders.models import StaffUser
from reminders.runtime import Runtime
from reminders.sessions import (
    Lifetime,
    close_session,
    end_user_sessions,
    open_session,
    purge_expired,
)
from reminders.staff import authenticate, normal_email, verify_totp
from reminders.throttle import Verdict
from reminders.validation import strip_refused
from reminders.web.pages import redirect, render
from reminders.web.security import (
    PREFIX,
    SESSION_COOKIE,
    FormDep,
    StaffDep,
    Visit,
    VisitDep,
    field,
    safe_next,
    set_session_cookie,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, include_in_schema=False)

WRONG = "The email or the password is not right."
WRONG_CODE = "That code is not right. Enter the 6 digits your authenticator app shows now."
NOTICES = {
    "signed-out": "You are signed out.",
    "everywhere": "You are signed out on every device.",
    "expired": "Your session ended. Sign in again.",
}


def _count(request: Request, verdict: Verdict, *, passed: bool) -> None:
    """Count a sign-in refused by a lockout, or a password or code that was not right."""
    metrics: WebMetrics = request.app.state.metrics
    if verdict.locked:
        metrics.sign_in_lockouts.inc()
    elif verdict.allowed and not passed:
        metrics.sign_in_failures.inc()


def _refusal(verdict: Verdict) -> str:
    """What a throttled visitor reads: how long to wait, never whether the account exists."""
    if verdict.locked:
        minutes = -(-verdict.wait_seconds // 60)
        return (
            "Too many failed sign-ins. Signing in is locked for "
            f"{minutes} minute{'s' if minutes != 1 else ''}; try again then."
        )
    seconds = verdict.wait_seconds
    return f"Too many tries in a row. Wait {seconds} second{'s' if seconds != 1 else ''}."


def _sign_in_page(
    request: Request,
    *,
    email: str = "",
    error: str | None = None,
    next_page: str | None = None,
    code: int = 200,
    notice: str | None = None,
) -> Response:
    return render(
        request,
        "sign_in.html",
        title="Sign in",
        staff=None,
        code=code,
        email=email,
        error=error,
        next=safe_next(next_page),
        flash=notice,
    )


@router.get("/sign-in")
def sign_in_page(
    request: Request,
    visit: VisitDep,
    next_page: Annotated[str | None, Query(alias="next")] = None,
    notice: Annotated[str | None, Query(alias="notice")] = None,
) -> Response:
    return _sign_in_page(request, next_page=next_page, notice=NOTICES.get(notice or ""))


def _start_session(
    session: Session, rt: Runtime, visit: Visit, user: StaffUser, *, address: str, now: datetime
) -> str:
    """A fresh session (never the one the visitor came with, against session fixation)."""
    if visit.token:
        close_session(session, visit.token)
    purge_expired(session, now=now, lifetime=Lifetime.of(rt.settings))
    token, _row = open_session(
        session,
        user_id=user.id,  # type: ignore[arg-type]
        address=address,
        now=now,
        second_factor_due=user.totp_secret is not None,
    )
    return token


@router.post("/sign-in")
def sign_in_submit(
    request: Request,
    rt: RuntimeDep,
    form: FormDep,
    visit: VisitDep,
    now: NowDep,
    address: AddressDep,
) -> Response:
    """Check the email and password: throttled, and the same answer for an unknown email."""
    email = field(form, "email")
    password = form.get("password")
    next_page = field(form, "next")
    # The throttle's key: PostgreSQL cannot store (or even look for) a NUL.
    account = strip_refused(normal_email(email))[:254]
    with session_scope(rt.engine) as session:
        verdict = throttle.check(session, account=account, address=address, now=now)
        user = None
        if verdict.allowed and email and isinstance(password, str) and password:
            user = authenticate(session, email=email, password=password)
        if verdict.allowed:
            throttle.note(
                session, account=account, address=address, succeeded=user is not None, now=now
            )
        token = None
        if user is not None:
            token = _start_session(session, rt, visit, user, address=address, now=now)
            if user.totp_secret is None:
                _audit_sign_in(session, user, address=address, now=now)
    _count(request, verdict, passed=user is not None)
    if not verdict.allowed:
        return _sign_in_page(
            request, email=email, error=_refusal(verdict), next_page=next_page, code=429
        )
    if user is None or token is None:
        return _sign_in_page(request, email=email, error=WRONG, next_page=next_page, code=400)
    target = f"{PREFIX}/sign-in/code" if user.totp_secret else safe_next(next_page)
    if user.totp_secret is None:
        log.info("staff user %s signed in", user.id)
    visit.token = None  # the old session, if any, is gone; the redirect carries the new one
    response = redirect(request, target)
    set_session_cookie(response, token, rt.settings)
    return response


def _audit_sign_in(session: Session, user: StaffUser, *, address: str, now: datetime) -> None:
    actor = Actor(kind="user", name=user.email, address=address)
    record(session, clinic_id=user.clinic_id, actor=actor, action="staff.sign_in", now=now)


def _code_page(request: Request, *, error: str | None = None, code: int = 200) -> Response:
    return render(
        request, "sign_in_code.html", title="Two-factor sign-in", staff=None, code=code, error=error
    )


@router.get("/sign-in/code")
def code_page(request: Request, visit: VisitDep) -> Response:
    if visit.second_factor_user is None:
        return redirect(request, f"{PREFIX}/sign-in")
    return _code_page(request)


@router.post("/sign-in/code")
def code_submit(
    request: Request,
    rt: RuntimeDep,
    form: FormDep,
    visit: VisitDep,
    now: NowDep,
    address: AddressDep,
) -> Response:
    """The second step: the authenticator's code, throttled like the password."""
    if visit.second_factor_user is None or visit.token is None:
        return redirect(request, f"{PREFIX}/sign-in")
    new_token = None
    with session_scope(rt.engine) as session:
        user = session.get(StaffUser, visit.second_factor_user)
        assert user is not None  # the visit was read with it a moment ago
        verdict = throttle.check(session, account=user.email, address=address, now=now)
        passed = verdict.allowed and verify_totp(user, field(form, "code"), now=now)
        if verdict.allowed:
            throttle.note(session, account=user.email, address=address, succeeded=passed, now=now)
        if passed:
            session.add(user)
            # The half-signed-in session is replaced by a full one with a new token.
            close_session(session, visit.token)
            new_token, _row = open_session(
                session,
                user_id=user.id,  # type: ignore[arg-type]
                address=address,
                now=now,
            )
            _audit_sign_in(session, user, address=address, now=now)
    _count(request, verdict, passed=passed)
    if not verdict.allowed:
        return _code_page(request, error=_refusal(verdict), code=429)
    if new_token is None:
        return _code_page(request, error=WRONG_CODE, code=400)
    log.info("staff user %s signed in with a second factor", user.id)
    visit.token = None
    response = redirect(request, PREFIX)
    set_session_cookie(response, new_token, rt.settings)
    return response


def _signed_out(request: Request, notice: str) -> Response:
    response = redirect(request, f"{PREFIX}/sign-in?notice={notice}")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.post("/sign-out")
def sign_out(request: Request, rt: RuntimeDep, form: FormDep, visit: VisitDep) -> Response:
    """End this session: its row is deleted, so the cookie is worth nothing any more."""
    if visit.token:
        with session_scope(rt.engine) as session:
            close_session(session, visit.token)
        visit.token = None
    return _signed_out(request, "signed-out")


@router.post("/sign-out-everywhere")
def sign_out_everywhere(
    request: Request, rt: RuntimeDep, form: FormDep, staff: StaffDep, visit: VisitDep, now: NowDep
) -> Response:
    """End every session of the signed-in user, on every device, this one included."""
    with session_scope(rt.engine) as session:
        ended = end_user_sessions(session, user_id=staff.user_id)
        record_by(session, staff, "staff.sign_out_everywhere", now=now, detail=f"{ended} sessions")
    visit.token = None
    return _signed_out(request, "everywhere")
