"""The clinic's inbox: patients' replies, newest first, and marking one handled."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from reminders.db import read_scope, session_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.services import NotFound, get_reply, mark_handled
from reminders.web import queries
from reminders.web.addresses import path_id
from reminders.web.pages import redirect, render
from reminders.web.security import PREFIX, FormDep, PageNotFound, StaffDep, field, safe_next

router = APIRouter(prefix=PREFIX, include_in_schema=False)

STATES = ("unread", "handled", "all")


@router.get("/replies")
def inbox(
    request: Request,
    staff: StaffDep,
    rt: RuntimeDep,
    now: NowDep,
    state: str = "unread",
    page: int = 1,
) -> Response:
    """Patients' replies, newest first: unread ones by default."""
    state = state if state in STATES else "unread"
    page = max(1, min(page, 10_000))
    with read_scope(rt.engine) as session:
        rows, total = queries.reply_rows(
            session,
            clinic_id=staff.clinic_id,
            timezone=staff.clinic_timezone,
            state=state,
            now=now,
            offset=(page - 1) * queries.PAGE_SIZE,
        )
    return render(
        request,
        "replies.html",
        title="Replies",
        staff=staff,
        rows=rows,
        total=total,
        state=state,
        states=STATES,
        page=page,
        pages=max(1, -(-total // queries.PAGE_SIZE)),
        timezone=staff.clinic_timezone,
    )


@router.post("/replies/{reply_id}/handled")
def handled(
    request: Request, reply_id: str, staff: StaffDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    """Mark a reply handled by the signed-in staff member; back to where it was done."""
    with session_scope(rt.engine) as session:
        try:
            reply = get_reply(session, reply_id=path_id(reply_id), clinic_id=staff.clinic_id)
        except NotFound:
            raise PageNotFound() from None
        changed = mark_handled(session, reply=reply, by=staff.email, now=now)
    back = safe_next(field(form, "next") or None)
    if back == PREFIX:
        back = f"{PREFIX}/replies"
    note = "The reply is marked handled." if changed else "That reply was already handled."
    return redirect(request, back, flash=note)
