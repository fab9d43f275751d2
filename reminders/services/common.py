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
    """The change contradicts the record's state (e.g. resuming a cancelled course)."""


@dataclass(frozen=True)
class Context:
    """What every service call needs besides its own arguments."""

    careplan: CarePlan
    now: datetime
    horizon: timedelta = timedelta(days=7)
