"""What every service call shares: its context and the errors a caller can act on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from reminders.careplan import CarePlan
from reminders.models import (
    CourseStatus,
)

LIVE_STATUSES = (CourseStatus.active.value, CourseStatus.paused.value)


class NotFound(LookupError):
    """No such record in this clinic."""


class Conflict(ValueError):
    """The change contradicts the record's state (e.g. resuming a cancelled course).

    Like a FieldError it names the field whose state refuses the change, and why.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Context:
    """What every service call needs besides its own arguments."""

    careplan: CarePlan
    now: datetime
    horizon: timedelta = timedelta(days=7)
