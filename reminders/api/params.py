"""Path and query parameters the /v1 routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# Ids and offsets are database integers; larger values cannot name a row (and SQLite cannot
# bind them).
MAX_ID = 2**31 - 1

# A page of a list: how many rows, from which one.
PageSize = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
