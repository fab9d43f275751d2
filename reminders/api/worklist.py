"""The clinic's worklist under /v1: everything that needs a person, oldest first.

Scoped to the clinic of the API key like every /v1 route; read in one read-only transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from reminders.api.errors import ERROR_RESPONSES
from reminders.deps import ClinicDep, NowDep, RuntimeDep, SessionDep
from reminders.services.worklist import counts, worklist

router = APIRouter(prefix="/v1/worklist", tags=["worklist"], responses=ERROR_RESPONSES)

Kind = Literal["reply", "unreachable", "no_channel", "confirm_end", "ipledge_test", "failed"]


class WorkItemOut(BaseModel):
    kind: Kind
    patient_id: int
    course_id: int | None
    since: datetime = Field(description="Since when it has waited")
    detail: str = Field(description="What to do, in a few words")
    link: str = Field(description="The clinic page where staff act on it")
    overdue: bool = Field(
        description="Waited more than one business day (a course to confirm: past its end)"
    )


class WorklistOut(BaseModel):
    items: list[WorkItemOut]
    counts: dict[str, int] = Field(description="Items of each kind")
    overdue: int = Field(description="How many items are overdue")


@router.get("")
def read_worklist(
    clinic: ClinicDep, session: SessionDep, rt: RuntimeDep, now: NowDep
) -> WorklistOut:
    """Everything at the clinic that needs a person, oldest first, each with a link to act."""
    items = worklist(
        session,
        clinic_id=clinic.id,  # type: ignore[arg-type]
        now=now,
        careplan=rt.careplan,
        reply_hours=rt.settings.worklist_reply_hours,
    )
    return WorklistOut(
        items=[WorkItemOut.model_validate(item.as_dict()) for item in items],
        counts=counts(items),
        overdue=sum(item.overdue for item in items),
    )
