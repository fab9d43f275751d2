"""Patients' replies under /v1: the clinic's inbox, and marking a reply handled.

Scoped to the clinic of the API key like every /v1 route: another clinic's reply answers 404.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from reminders.api.errors import ERROR_RESPONSES
from reminders.api.params import Offset, PageSize
from reminders.api.schemas import ReplyOut, ReplyPage
from reminders.deps import ClinicDep, NowDep, SessionDep
from reminders.models import MAX_ID
from reminders.services import get_reply, list_replies, mark_handled

router = APIRouter(prefix="/v1/replies", tags=["replies"], responses=ERROR_RESPONSES)

ReplyId = Annotated[int, Path(ge=1, le=MAX_ID, description="Reply id")]
# Who marked a reply handled, when it was done with the clinic's key rather than by a person.
HANDLED_BY_API = "api"


@router.get("")
def read_replies(
    clinic: ClinicDep,
    session: SessionDep,
    state: Annotated[
        Literal["unread", "handled", "all"], Query(description="Which replies")
    ] = "all",
    limit: PageSize = 50,
    offset: Offset = 0,
) -> ReplyPage:
    """Patients' texts to the clinic, newest first: messages for staff and keywords answered."""
    rows, total = list_replies(
        session,
        clinic_id=clinic.id,
        state=state,
        limit=limit,
        offset=offset,
    )
    items = [ReplyOut.model_validate(row) for row in rows]
    return ReplyPage(items=items, total=total, limit=limit, offset=offset)


@router.post("/{reply_id}/handled")
def handle_reply(
    reply_id: ReplyId, clinic: ClinicDep, session: SessionDep, now: NowDep
) -> ReplyOut:
    """Mark a reply handled; one already handled keeps who handled it and when."""
    reply = get_reply(session, reply_id=reply_id, clinic_id=clinic.id)
    mark_handled(session, reply=reply, by=HANDLED_BY_API, now=now)
    return ReplyOut.model_validate(reply)
