"""The signed-in user's own account: two-factor sign-in, and signing out everywhere."""

from __future__ import annotations

import segno
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from reminders.audit import record_by
from reminders.db import session_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.models import StaffSession
from reminders.sessions import token_hash
from reminders.staff import disable_totp, enable_totp, get_staff, new_totp_secret, totp_uri
from reminders.staff import verify_totp as code_is_right
from reminders.validation import InvalidInput
from reminders.web.pages import redirect, render
from reminders.web.security import PREFIX, FormDep, Staff, StaffDep, Visit, VisitDep, field

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ACCOUNT = f"{PREFIX}/account"


def qr_svg(data: str) -> Markup:
    """A QR code of `data` as inline SVG: drawn here, so no image loads from anywhere."""
    code = segno.make(data, error="m")
    svg = code.svg_inline(scale=5, border=2, dark="#111", light="#fff", title="QR code")
    return Markup(svg)  # noqa: S704 - segno's own markup, no user text in it


def _account_page(
    request: Request,
    staff: Staff,
    visit: Visit,
    rt_engine: object,
    *,
    error: str | None = None,
    code: int = 200,
) -> Response:
    with session_scope(rt_engine) as session:  # type: ignore[arg-type]
        user = get_staff(session, user_id=staff.user_id)
        enabled = user.totp_secret is not None
        secret = None
        if not enabled:
            row = session.get(StaffSession, token_hash(visit.token or ""))
            assert row is not None  # a signed-in visit has its row
            # One secret per enrolment: kept with the session until a code confirms it.
            if row.totp_pending is None:
                row.totp_pending = new_totp_secret()
                session.add(row)
            secret = row.totp_pending
    return render(
        request,
        "account.html",
        title="Your account",
        staff=staff,
        code=code,
        enabled=enabled,
        secret=secret,
        qr=qr_svg(totp_uri(secret, email=staff.email)) if secret else None,
        error=error,
    )


@router.get("/account")
def account_page(request: Request, staff: StaffDep, visit: VisitDep, rt: RuntimeDep) -> Response:
    return _account_page(request, staff, visit, rt.engine)


@router.post("/account/two-factor")
def turn_on(
    request: Request,
    staff: StaffDep,
    visit: VisitDep,
    form: FormDep,
    rt: RuntimeDep,
    now: NowDep,
) -> Response:
    """Turn on two-factor sign-in with the secret shown, once a code from it is right."""
    try:
        with session_scope(rt.engine) as session:
            row = session.get(StaffSession, token_hash(visit.token or ""))
            user = get_staff(session, user_id=staff.user_id)
            if row is None or row.totp_pending is None:
                raise InvalidInput.one("code", "open this page again and scan the new code")
            enable_totp(user, secret=row.totp_pending, code=field(form, "code"), now=now)
            row.totp_pending = None
            session.add_all([row, user])
            record_by(session, staff, "staff.two_factor_on", now=now)
    except InvalidInput as exc:
        reason = exc.errors[0].reason
        return _account_page(
            request, staff, visit, rt.engine, error=f"The code {reason}.", code=422
        )
    return redirect(request, ACCOUNT, flash="Two-factor sign-in is on.")


@router.post("/account/two-factor/off")
def turn_off(
    request: Request,
    staff: StaffDep,
    visit: VisitDep,
    form: FormDep,
    rt: RuntimeDep,
    now: NowDep,
) -> Response:
    """Turn two-factor sign-in off; a current code proves it is the user who asks."""
    with session_scope(rt.engine) as session:
        user = get_staff(session, user_id=staff.user_id)
        passed = code_is_right(user, field(form, "code"), now=now)
        if passed:
            disable_totp(user)
            session.add(user)
            record_by(session, staff, "staff.two_factor_off", now=now)
    if not passed:
        return _account_page(
            request, staff, visit, rt.engine, error="That code is not right.", code=422
        )
    return redirect(request, ACCOUNT, flash="Two-factor sign-in is off.")
