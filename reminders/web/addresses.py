"""What a page's address names: a record by its id, an action by its name; the 404 page for
anything else, so that a made-up address looks like any record of another clinic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from reminders.models import MAX_ID
from reminders.web.security import PageNotFound

T = TypeVar("T")


def path_id(text: str) -> int:
    """A record's id from the address."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise PageNotFound()
    return int(text)


def listed(table: Mapping[str, T], name: str) -> T:
    """The entry of `table` that the address names."""
    if name not in table:
        raise PageNotFound()
    return table[name]
