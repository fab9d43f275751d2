"""Email unsubscribe links (RFC 8058 one-click) and the page a person sees when they open one.

GET only shows a page with a button: link scanners and mail previews fetch links, and must
not unsubscribe anyone. POST with `List-Unsubscribe=One-Click` (what mail clients send, and
what the button sends) opts the patient out of email at once.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from reminders.api.texts import page
from reminders.deps import NowDep, RuntimeDep, SessionDep
from reminders.models import Clinic, Patient
from reminders.runtime import Runtime
from reminders.services import get_clinic, patient_by_public_id, unsubscribe_email
from reminders.tokens import read_unsubscribe_token

log = logging.getLogger(__name__)
router = APIRouter(prefix="/unsubscribe", tags=["unsubscribe"])

Token = Annotated[str, Path(description="The signed token from the email")]
MAX_TOKEN = 512
HTML = {"text/html": {"schema": {"type": "string"}}}
PAGES: dict[int | str, dict[str, Any]] = {
    200: {"content": HTML, "description": "A page for the person who opened the link"},
    404: {"content": HTML, "description": "The link is not valid"},
}


def _patient(session: Session, rt: Runtime, token: str) -> tuple[Patient, Clinic] | None:
    # Every malformed link gets the same page as a forged one, never an error for developers.
    public_id = read_unsubscribe_token(token, rt.settings) if len(token) <= MAX_TOKEN else None
    patient = patient_by_public_id(session, public_id) if public_id else None
    if patient is None:
        return None
    return patient, get_clinic(session, patient.clinic_id)


def _not_found() -> HTMLResponse:
    return HTMLResponse(page("not_found"), status_code=404)


@router.get("/{token}", response_class=HTMLResponse, responses=PAGES)
def confirm(token: Token, rt: RuntimeDep, session: SessionDep) -> HTMLResponse:
    """The confirmation page: a button that unsubscribes; nothing changes until it is pressed."""
    found = _patient(session, rt, token)
    if found is None:
        return _not_found()
    patient, clinic = found
    name = "done" if patient.email_opted_out else "confirm"
    return HTMLResponse(
        page(
            name,
            locale=patient.locale,
            clinic=clinic.name,
            help_contact=clinic.help_contact,
            action=token,
        )
    )


async def one_click_field(request: Request) -> str | None:
    """The `List-Unsubscribe` form field, or None when there is no readable form."""
    try:
        form = await request.form()
    except Exception:  # an unreadable body is simply not a one-click request
        return None
    value = form.get("List-Unsubscribe")
    return value if isinstance(value, str) else None


ONE_CLICK_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
                }
            }
        }
    }
}


@router.post(
    "/{token}",
    response_class=HTMLResponse,
    responses={**PAGES, 400: {"content": HTML, "description": "Not a one-click request"}},
    openapi_extra=ONE_CLICK_BODY,
)
def one_click(
    token: Token,
    rt: RuntimeDep,
    session: SessionDep,
    now: NowDep,
    list_unsubscribe: Annotated[str | None, Depends(one_click_field)],
) -> HTMLResponse:
    """RFC 8058 one-click unsubscribe: the email channel stops at once."""
    found = _patient(session, rt, token)
    if found is None:
        return _not_found()
    if list_unsubscribe != "One-Click":
        return HTMLResponse(page("bad_request"), status_code=400)
    patient, clinic = found
    if unsubscribe_email(session, patient=patient, now=now):
        log.info("patient %s unsubscribed from email by link", patient.id)
    return HTMLResponse(
        page("done", locale=patient.locale, clinic=clinic.name, help_contact=clinic.help_contact)
    )
