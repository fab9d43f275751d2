"""A page of a query's rows and how many rows match in all: every list a clinic reads (its
patients, its replies, its audit trail) is shown a page at a time with its total."""

from __future__ import annotations

from typing import Any, TypeVar, overload

from sqlalchemy import func
from sqlmodel import Session, select
from sqlmodel.sql.expression import Select, SelectOfScalar

T = TypeVar("T")


@overload
def page(
    session: Session, query: SelectOfScalar[T], *, order: tuple[Any, ...], limit: int, offset: int
) -> tuple[list[T], int]: ...
@overload
def page(
    session: Session,
    query: Select[*tuple[Any, ...]],
    *,
    order: tuple[Any, ...],
    limit: int,
    offset: int,
) -> tuple[list[Any], int]: ...
def page(
    session: Session,
    query: Any,
    *,
    order: tuple[Any, ...],
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    """The rows of `query` in `order` from `offset`, at most `limit`, and the total that match."""
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(*order).offset(offset).limit(limit)).all()
    return list(rows), total
