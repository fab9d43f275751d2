"""Rendering the clinic pages: one Jinja2 environment, the headers every page carries."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import phonenumbers
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from reminders.clock import as_utc
from reminders.db import session_scope
from reminders.deps import get_runtime
from reminders.models import CourseStatus, StaffSession
from reminders.sessions import token_hash
from reminders.timing import zone
from reminders.validation import FieldError
from reminders.web.security import (
    CSRF_FIELD,
    PREFIX,
    AdminOnly,
    CsrfRejected,
    PageNotFound,
    SignInRequired,
    Staff,
    Visit,
    set_cookies,
    visitor,
)

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# No script runs on these pages, nothing loads from elsewhere, and no style is inline. The
# headers every response carries (no-store, nosniff, no framing) come from reminders.headers.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
}


def local_time(value: datetime | None, timezone: str) -> str:
    """'Mon 16 Mar 2026, 10:00 EDT' in `timezone`."""
    if value is None:
        return ""
    local = as_utc(value).astimezone(zone(timezone))
    return f"{local:%a %d %b %Y, %H:%M} {local.tzname()}"


def iso(value: datetime | None) -> str:
    return as_utc(value).isoformat() if value is not None else ""


def phone(value: str | None) -> str:
    """+13125550111 -> +1 312-555-0111, easier to read back to a patient."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def long_date(value: date | None) -> str:
    return f"{value:%a %d %b %Y}" if value is not None else ""


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    autoescape=select_autoescape(enabled_extensions=("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(local=local_time, iso=iso, long_date=long_date, phone=phone)
_env.globals.update(
    prefix=PREFIX,
    csrf_field=CSRF_FIELD,
    status_labels={
        "planned": "Upcoming",
        "pending": "Waiting to send",
        "sending": "Sending",
        "unknown": "Outcome unknown",
        "sent": "Sent",
        "delivered": "Delivered",
        "undelivered": "Not delivered",
        "failed": "Failed",
        "suppressed": "Not sent: opted out",
        "held": "Held: contact unreachable",
        "expired": "Not sent in time",
        "cancelled": "Cancelled",
    },
    topic_labels={
        "welcome": "Welcome",
        "milestone": "Milestone",
        "moisturizer": "Dry skin care",
        "sun_protection": "Sun protection",
        "end_of_course": "End of course",
        "post_course": "After the course",
        "ipledge": "iPLEDGE steps",
    },
    # The command line's words too (CourseStatus.word): "stopped", never "cancelled".
    course_labels={status.value: status.word for status in CourseStatus},
    source_labels={
        "staff": "By staff",
        "api": "Through the API",
        "import": "Spreadsheet import",
        "enrollment": "At enrolment",
        "reply": "Patient's text reply",
        "provider": "Reported by the carrier",
        "link": "Email unsubscribe link",
        "carried_over": "Opted out earlier at this number or address",
    },
    opt_out_reasons={
        "reply": "the patient asked to stop in a text",
        "provider": "the carrier reported the number unsubscribed",
        "link": "the patient used the unsubscribe link",
        "carried_over": "this contact had opted out earlier, in another enrolment",
        "staff": "staff recorded the patient's wish",
        "api": "recorded through the API",
    },
    reply_labels={
        "message": "Message",
        "opt_out": "Opt-out (STOP)",
        "opt_in": "Opt-in (START)",
        "help": "Help (HELP)",
    },
)


Values = dict[str, str]  # a form's fields as sent, by name
Errors = dict[str, str]  # the reason each refused field was refused, by name


def errors_by_field(errors: list[FieldError]) -> Errors:
    """One message per field (the first), for the inline errors next to each input."""
    found: dict[str, str] = {}
    for error in errors:
        found.setdefault(error.field, error.reason)
    return found


def _visit(request: Request) -> Visit | None:
    return getattr(request.state, "visit", None)


def render(
    request: Request,
    name: str,
    *,
    title: str,
    staff: Staff | None,
    code: int = 200,
    flash: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """A page; a message left by the previous request (after a redirect) is shown once."""
    settings = get_runtime(request).settings
    # A page for a request that never looked at its session (an error page) is a visitor's.
    visit = _visit(request) or visitor(request, settings)
    html = _env.get_template(name).render(
        request_path=request.url.path,
        title=title,
        staff=staff,
        flash=flash or visit.flash,
        csrf_token=visit.csrf,
        **values,
    )
    response = HTMLResponse(html, status_code=code, headers=HEADERS)
    set_cookies(response, visit, settings)
    return response


def form_page(
    request: Request,
    name: str,
    *,
    title: str,
    staff: Staff,
    values: Values,
    errors: Errors | None = None,
    **values_of_page: Any,
) -> HTMLResponse:
    """A page around one form: the values as sent and, when it was refused (422), the reason
    beside each field."""
    return render(
        request,
        name,
        title=title,
        staff=staff,
        code=422 if errors else 200,
        values=values,
        errors=errors or {},
        **values_of_page,
    )


def redirect(request: Request, url: str, flash: str | None = None) -> RedirectResponse:
    """303 See Other (a form POST is followed by a GET), with a message for the next page."""
    visit = _visit(request)
    if flash and visit is not None and visit.token:
        with session_scope(get_runtime(request).engine) as session:
            row = session.get(StaffSession, token_hash(visit.token))
            if row is not None:
                row.flash = flash[:300]
                session.add(row)
    response = RedirectResponse(url, status_code=303)
    set_cookies(response, visit, get_runtime(request).settings)
    return response


def install_handlers(app: FastAPI) -> None:
    """Pages answer their own refusals as pages, apart from the API's JSON errors."""

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, _exc: SignInRequired) -> Response:
        target = request.url.path if request.method == "GET" else PREFIX
        response = RedirectResponse(f"{PREFIX}/sign-in?next={quote(target)}", status_code=303)
        set_cookies(response, _visit(request), get_runtime(request).settings)
        return response

    @app.exception_handler(AdminOnly)
    async def admins_only(request: Request, _exc: AdminOnly) -> Response:
        staff = getattr(request.state, "staff", None)
        return render(request, "admin_only.html", title="For admins", staff=staff, code=403)

    @app.exception_handler(PageNotFound)
    async def not_found(request: Request, _exc: PageNotFound) -> Response:
        staff = getattr(request.state, "staff", None)
        return render(request, "not_found.html", title="Not found", staff=staff, code=404)

    @app.exception_handler(CsrfRejected)
    async def forbidden(request: Request, _exc: CsrfRejected) -> Response:
        staff = getattr(request.state, "staff", None)
        return render(request, "forbidden.html", title="Form expired", staff=staff, code=403)
