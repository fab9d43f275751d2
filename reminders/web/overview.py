"""The clinic's worklist (everything that needs a person, oldest first) and the clinic at a
glance: courses, this week's messages, failures and opt-outs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import col, select

from reminders.db import read_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.models import Patient
from reminders.services.worklist import ONE, counts, label
from reminders.web import queries
from reminders.web.pages import render
from reminders.web.security import PREFIX, StaffDep, clinic_worklist

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
def overview(request: Request, staff: StaffDep, rt: RuntimeDep, now: NowDep) -> Response:
    with read_scope(rt.engine) as session:
        items = clinic_worklist(session, rt, staff, now)
        ids = sorted({item.patient_id for item in items})
        names = dict(
            session.exec(
                select(Patient.id, Patient.first_name).where(col(Patient.id).in_(ids))
            ).all()
        )
        summary = queries.overview(session, clinic_id=staff.clinic_id, now=now)
    return render(
        request,
        "overview.html",
        title="Worklist",
        staff=staff,
        items=items,
        counts=[label(kind, n) for kind, n in counts(items).items() if n],
        kind_labels=ONE,
        names=names,
        summary=summary,
        channel_names=queries.CHANNEL_NAMES,
    )
