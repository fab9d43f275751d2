"""The clinic overview: courses, this week's messages, failures and opt-outs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from reminders.db import read_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.web import queries
from reminders.web.pages import render
from reminders.web.security import PREFIX, StaffDep

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
def overview(request: Request, staff: StaffDep, rt: RuntimeDep, now: NowDep) -> Response:
    with read_scope(rt.engine) as session:
        summary = queries.overview(session, clinic_id=staff.clinic_id, now=now)
    return render(
        request,
        "overview.html",
        title="Overview",
        staff=staff,
        summary=summary,
        channel_names=queries.CHANNEL_NAMES,
    )
