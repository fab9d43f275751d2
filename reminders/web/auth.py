"""Signing in and out of the clinic pages."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from reminders.db import read_scope
from reminders.deps import RuntimeDep
from reminders.staff import authenticate
from reminders.web.pages import redirect, render
from reminders.web.security import PREFIX, FormDep, field, safe_next, sign_in

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, include_in_schema=False)

WRONG = "The email or the password is not right."


@router.get("/sign-in")
def sign_in_page(
    request: Request, next_page: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    return render(
        request,
        "sign_in.html",
        title="Sign in",
        staff=None,
        email="",
        error=None,
        next=safe_next(next_page),
    )


@router.post("/sign-in")
def sign_in_submit(request: Request, rt: RuntimeDep, form: FormDep) -> Response:
    """Check the email and password; the same answer for an unknown email and a wrong password."""
    email = field(form, "email")
    password = form.get("password")
    user = None
    if email and isinstance(password, str) and password:
        with read_scope(rt.engine) as session:
            user = authenticate(session, email=email, password=password)
    if user is None:
        log.info("staff sign-in refused")
        return render(
            request,
            "sign_in.html",
            title="Sign in",
            staff=None,
            code=400,
            email=email,
            error=WRONG,
            next=safe_next(field(form, "next")),
        )
    sign_in(request, user)
    log.info("staff user %s signed in", user.id)
    return redirect(request, safe_next(field(form, "next")))


@router.post("/sign-out")
def sign_out(request: Request, form: FormDep) -> Response:
    request.session.clear()
    return redirect(request, f"{PREFIX}/sign-in", flash="You are signed out.")
