"""Path and query parameters the /v1 routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from reminders.models import MAX_ID

# A page of a list: how many rows, from which one.
PageSize = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
