"""The outbox row's lifecycle: its states, the moves between them, and the code that makes them.

Nothing else in the package writes an outbox row's `status`, `attempts`, `send_after`,
`claim_token`, `provider_id` or `last_error`. Every function here is one conditional UPDATE
(or upsert) whose WHERE clause names the states it moves from and, for a claimed row, the
claim token: a worker that lost its lease, a replayed report or a second planner finds the
row moved on and changes nothing. A move that TRANSITIONS does not list is refused before
any SQL runs. History (sent, delivered, undelivered, failed, expired, suppressed, cancelled,
and held until released) is never planned over: the upsert rewrites pending and cancelled rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, bindparam, case, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from reminders.db import is_postgres
from reminders.models import PENDING, SENDING, Channel, Message, MessageStatus

S = MessageStatus

# Every move a row can make: from, to, the event, and when. `new` is a row not yet written;
# `a|b` stands for each of a and b.
_TABLE = """
new                     pending      plan      a planner writes a message due within its horizon
pending|cancelled       pending      plan      re-planned: the times moved, or back in the plan
pending                 sending      claim     a worker takes a due row, with a lease and a token
pending|held            cancelled    cancel    course paused or stopped, channel dropped, unplanned
pending|held            suppressed   suppress  the patient opted out of the channel
pending|sending         held         hold      the contact is unreachable: kept, not attempted
held                    pending|expired  release  the contact was fixed: still worth it, or too late
suppressed              cancelled    reopen    opted in again: what is ahead may be planned again
sending                 sent         send      the provider accepted it
sending                 pending      retry     an attempt failed for now: try again later
sending                 pending      defer     not now: quiet hours, the caps, a worker stopping
sending                 failed       fail      refused for good, or out of attempts
sending                 expired      expire    it would arrive too late to be useful
sending                 suppressed   suppress  opted out: seen before the send, or said by provider
sending                 cancelled    cancel    the course stopped while the row was claimed
sending                 unknown      reap      the lease ran out: the worker died mid-send
unknown                 sent|pending settle    found at the provider (or email policy), else resent
pending|sending|unknown sent|delivered|undelivered|failed  report  a delivery report (by rank)
sent                    delivered|undelivered|failed       report  a delivery report (by rank)
"""


Move = tuple[MessageStatus | None, MessageStatus]


def _parse(table: str) -> dict[Move, frozenset[str]]:
    """(from, to) -> the events that make that move."""
    moves: dict[Move, set[str]] = {}
    for sources, targets, event, *_when in (line.split() for line in table.strip().splitlines()):
        for source, target in itertools.product(sources.split("|"), targets.split("|")):
            moves.setdefault((None if source == "new" else S(source), S(target)), set()).add(event)
    return {pair: frozenset(events) for pair, events in moves.items()}


TRANSITIONS: Final = _parse(_TABLE)
EVENTS: Final = frozenset().union(*TRANSITIONS.values())

# A delivery report moves a row only to a higher rank, so replays and late arrivals never go
# backwards. Rows suppressed, expired or cancelled by us are history and have no rank.
DELIVERY_RANK: Final = {S.pending: 0, S.sending: 1, S.unknown: 1, S.sent: 2}
DELIVERY_RANK.update({S.delivered: 3, S.undelivered: 3, S.failed: 3})


class TransitionRefused(ValueError):
    """A move the lifecycle table does not allow."""


def require(event: str, sources: Iterable[MessageStatus | None], target: MessageStatus) -> None:
    """Refuse, before any SQL runs, an `event` moving from any of `sources` that the table lacks."""
    for source in sources:
        if event not in TRANSITIONS.get((source, target), ()):
            raise TransitionRefused(
                f"outbox: {event} does not move a row {source or 'new'} -> {target}"
            )


def _error(text: str | None) -> str | None:
    return text[:300] if text else None


def move(
    session: Session,
    event: str,
    sources: Collection[MessageStatus],
    target: MessageStatus,
    now: datetime,
    where: Sequence[ColumnElement[bool]] = (),
    **values: Any,
) -> int:
    """Move every row matching `where` that is in one of `sources` to `target`; rows moved."""
    require(event, sources, target)
    statement = (
        update(Message)
        .where(col(Message.status).in_([source.value for source in sources]), *where)
        .values(status=target.value, updated_at=now, **values)
    )
    return session.exec(statement).rowcount or 0  # type: ignore[call-overload]


# -- planning ----------------------------------------------------------------------------

# What a re-plan rewrites on an open row, besides its status and (if the plan moved) send_after.
_REPLANNED = ("topics", "items", "parts", "priority", "due_at", "expires_at", "updated_at")


def plan(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert planned rows; an open row (pending, cancelled) takes the new times, history stays.
    Safe in any number of planners at once: the unique (course, key, channel) constraint
    makes a second row impossible. Returns the number of rows offered."""
    require("plan", (None, S.pending, S.cancelled), S.pending)
    table = Message.__table__  # type: ignore[attr-defined]
    insert = pg_insert if is_postgres(session.get_bind()) else sqlite_insert  # type: ignore[arg-type]
    # One compiled statement run with many parameter sets (cached, and batched by the driver);
    # a literal multi-row VALUES would be compiled afresh for every batch.
    statement = insert(table).values(status=S.pending.value)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["course_id", "key", "channel"],
        set_={
            **{name: excluded[name] for name in _REPLANNED},
            # A retry or a quiet-hours deferral moved send_after: keep it unless the plan moved.
            "send_after": case(
                (table.c.due_at != excluded["due_at"], excluded["send_after"]),
                (table.c.status == S.cancelled.value, excluded["send_after"]),
                else_=table.c.send_after,
            ),
            "status": S.pending.value,
        },
        # Spelled out rather than IN (...): an expanding IN cannot run as executemany.
        where=or_(table.c.status == S.pending.value, table.c.status == S.cancelled.value),
    )
    # Plain executemany: the driver batches it (RETURNING would make SQLAlchemy render
    # multi-row VALUES instead, measurably slower on PostgreSQL). Its rowcount is not reliable
    # across drivers (0 on psycopg), so the count is of the rows offered, history included.
    session.execute(statement, rows)
    return len(rows)


def _matching(**columns: Any) -> list[ColumnElement[bool]]:
    """`column == value` for each column given a value; a list means IN."""
    found = [(col(getattr(Message, name)), value) for name, value in columns.items()]
    return [c.in_(v) if isinstance(v, list) else c == v for c, v in found if v is not None]


def cancel_pending(
    session: Session,
    *,
    now: datetime,
    reason: str,
    ids: list[int] | None = None,
    course_id: int | None = None,
    patient_id: int | None = None,
    channel: Channel | None = None,
) -> int:
    """Cancel pending and held rows (paused, stopped, channel dropped, out of the plan)."""
    where = _matching(id=ids, course_id=course_id, patient_id=patient_id, channel=channel)
    return move(session, "cancel", _WAITING, S.cancelled, now, where, last_error=reason)


_WAITING = (S.pending, S.held)  # rows not claimed, waiting to go out


def suppress_pending(
    session: Session, *, patient_id: int, channel: Channel, now: datetime, reason: str
) -> int:
    """Suppress every pending or held row of a patient's channel: they opted out."""
    where = _matching(patient_id=patient_id, channel=channel)
    return move(session, "suppress", _WAITING, S.suppressed, now, where, last_error=reason)


def hold_pending(
    session: Session, *, patient_id: int, channel: Channel, now: datetime, reason: str
) -> int:
    """Hold every pending row of a patient's channel: its contact is unreachable."""
    where = _matching(patient_id=patient_id, channel=channel)
    return move(session, "hold", (S.pending,), S.held, now, where, last_error=_error(reason))


def release(session: Session, *, patient_id: int, channel: Channel, now: datetime) -> int:
    """The contact was fixed: held rows still in their window (the planner's, with its grace
    days, as the gate judges it) go out now, the others expire; how many go out again."""
    where = _matching(patient_id=patient_id, channel=channel)
    late = [*where, col(Message.expires_at) <= now]
    move(session, "release", (S.held,), S.expired, now, late, last_error="held past its window")
    return move(
        session, "release", (S.held,), S.pending, now, where, send_after=now, last_error=None
    )


def reopen(session: Session, *, patient_id: int, channel: Channel, now: datetime) -> int:
    """Make the suppressed rows still ahead plannable again (as cancelled): opted in again.
    What fell due while opted out stays suppressed: it is not sent late."""
    where = [*_matching(patient_id=patient_id, channel=channel), col(Message.due_at) >= now]
    return move(
        session, "reopen", (S.suppressed,), S.cancelled, now, where, last_error="opted in again"
    )


# -- a worker's claim and its fenced results ---------------------------------------------


@dataclass(frozen=True)
class Hold:
    """A claimed row: results are written only while the claim's token still holds it."""

    row_id: int
    token: str


def claim(
    session: Session, *, now: datetime, limit: int, lease_until: datetime, token: str
) -> list[int]:
    """Move up to `limit` due pending rows to `sending` under `token`, in one statement
    (on SQLite every write transaction begins with BEGIN IMMEDIATE: a single writer)."""
    # The literal matches the partial index's own WHERE; SQLite ignores a partial index for a
    # bound `status = ?`, and the claim would then scan every pending row.
    due = select(col(Message.id)).where(PENDING, col(Message.send_after) <= now)
    due = due.order_by(col(Message.send_after)).limit(limit)
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        # Rows another worker is claiming right now are skipped, not waited for.
        due = due.with_for_update(skip_locked=True)
    values = {"claim_token": token, "lease_until": lease_until, "updated_at": now}
    return _take(session, "claim", due, (S.pending, S.sending), values)


def _take(session: Session, event: str, chosen: Select, pair: Move, values: dict) -> list[int]:
    """Move the rows `chosen` selects (ids) from `source` to `target` of `pair`; their ids."""
    source, target = pair
    assert source is not None
    require(event, (source,), target)
    # A CTE is evaluated once; PostgreSQL may re-run a plain `IN (subquery ... LIMIT)` and
    # then move more rows than asked for.
    ids = chosen.cte("chosen")
    statement = (
        update(Message)
        .where(col(Message.id) == ids.c.id, col(Message.status) == source.value)
        .values(status=target.value, **values)
        .returning(col(Message.id))
    )
    return [row_id for (row_id,) in session.execute(statement)]


def _end(
    session: Session,
    event: str,
    hold: Hold,
    target: MessageStatus,
    now: datetime,
    reason: str | None,
    attempted: bool = False,
    **values: Any,
) -> int:
    """End a claim: the row leaves `sending`, only if this claim still holds it."""
    if attempted:
        values["attempts"] = Message.attempts + 1
    where = [col(Message.id) == hold.row_id, col(Message.claim_token) == hold.token]
    released = {"claim_token": None, "lease_until": None, "last_error": _error(reason)}
    return move(session, event, (S.sending,), target, now, where, **released, **values)


def retry(session: Session, hold: Hold, *, at: datetime, reason: str, now: datetime) -> bool:
    """An attempt failed for now: back to pending, to be tried again at `at`."""
    return _end(session, "retry", hold, S.pending, now, reason, True, send_after=at) == 1


def defer(session: Session, hold: Hold, *, at: datetime, reason: str, now: datetime) -> bool:
    """Give a claimed row back, to go out at `at`: quiet hours, the caps, a stopping worker."""
    return _end(session, "defer", hold, S.pending, now, f"deferred: {reason}", send_after=at) == 1


def end(
    session: Session, hold: Hold, target: S, *, reason: str, now: datetime, attempted: bool
) -> bool:
    """End a claim: failed (refused for good, or out of attempts), expired (too late to be
    useful), suppressed (opted out), held (the contact is unreachable: kept until fixed)."""
    return _end(session, _SETTLED_BY[target], hold, target, now, reason, attempted=attempted) == 1


def _fenced_many(session: Session, token: str, values: dict[str, Any], params: list[dict]) -> int:
    """One UPDATE for many claimed rows (`row_id` in each parameter set), fenced by the token;
    how many changed (the others were taken over after their lease ran out)."""
    # The table, not the mapped class: an ORM update run with many parameter sets would be
    # taken for a bulk update by primary key, which cannot carry the fencing conditions.
    table = Message.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"), table.c.claim_token == token)
        .where(table.c.status == S.sending.value)
        .values(claim_token=None, lease_until=None, **values)
    )
    return max(session.exec(statement, params=params).rowcount or 0, 0)  # type: ignore[call-overload]


# The event that ends a claim in each state without a send (a gate's decision).
_SETTLED_BY = {S.pending: "defer", S.cancelled: "cancel", S.suppressed: "suppress", S.held: "hold"}
_SETTLED_BY |= {S.expired: "expire", S.failed: "fail"}


def settle_many(
    session: Session,
    *,
    token: str,
    outcomes: Sequence[tuple[int, MessageStatus, str, datetime | None]],
    now: datetime,
) -> int:
    """End many claims without a send in one statement: (row id, target, reason, at); a row
    going back to pending is deferred to `at`, the others end for good, before any attempt."""
    params = []
    for row_id, target, reason, at in outcomes:
        require(_SETTLED_BY.get(target, "settle"), (S.sending,), target)
        text = f"deferred: {reason}" if target == S.pending else reason
        params.append({"row_id": row_id, "target": target, "reason": _error(text), "at": at})
    if not params:
        return 0
    send_after: ColumnElement[datetime] = func.coalesce(bindparam("at"), col(Message.send_after))
    values = {"status": bindparam("target"), "send_after": send_after, "updated_at": now}
    return _fenced_many(session, token, {**values, "last_error": bindparam("reason")}, params)


def record_sent(
    session: Session, *, token: str, sent: Sequence[tuple[int, str | None, datetime]], now: datetime
) -> int:
    """Record many accepted sends at once: (row id, provider id, sent at)."""
    require("send", (S.sending,), S.sent)
    values = {"status": S.sent, "attempts": col(Message.attempts) + 1, "last_error": None}
    values |= {"provider_id": bindparam("provider_id"), "sent_at": bindparam("sent_at")}
    params = [{"row_id": row, "provider_id": sid, "sent_at": at} for row, sid, at in sent]
    return _fenced_many(session, token, {**values, "updated_at": now}, params)


# -- the reaper --------------------------------------------------------------------------


def lose_leases(session: Session, *, now: datetime, limit: int, token: str) -> list[int]:
    """Take rows whose lease ran out in `sending` to `unknown` under a new token, which fences
    out the worker that lost the row, should it wake up and record."""
    # SENDING is the partial index's own condition.
    stale = select(col(Message.id)).where(SENDING, col(Message.lease_until) < now).limit(limit)
    values = {"claim_token": token, "updated_at": now}
    return _take(session, "reap", stale, (S.sending, S.unknown), values)


def settle_unknown(
    session: Session, *, row_id: int, provider_id: str | None, now: datetime
) -> bool:
    """An unknown row: `sent` when the provider has it (`provider_id`), else pending again."""
    values: dict[str, Any] = {"claim_token": None, "lease_until": None}
    if provider_id:
        target, values["last_error"] = S.sent, "recovered after a worker stopped mid-send"
        values |= {"provider_id": provider_id, "sent_at": now}
    else:
        target, values["last_error"] = S.pending, "not confirmed sent after a worker stopped"
        values["last_error"] += "; sending again"
        values |= {"send_after": now}
    where = [col(Message.id) == row_id]
    return move(session, "settle", (S.unknown,), target, now, where, **values) == 1


# -- delivery reports --------------------------------------------------------------------


def report(
    session: Session,
    *,
    row_id: int,
    target: MessageStatus,
    provider_id: str,
    reason: str | None,
    now: datetime,
) -> bool:
    """Move a row forward on a delivery report; a replay or a late, lower report changes nothing.

    Only a report for the row's own send counts: it names the provider id the row was sent
    under (a row sent again after a worker died has a new one), or the row has none yet (a
    report that beats the worker's own write settles the row; that write then finds it gone)."""
    rank = DELIVERY_RANK[target]
    sources = [status for status, other in DELIVERY_RANK.items() if other < rank]
    values: dict[str, Any] = {"claim_token": None, "lease_until": None}
    values |= {"sent_at": func.coalesce(Message.sent_at, now)}
    values["provider_id"] = func.coalesce(Message.provider_id, provider_id)
    sid = col(Message.provider_id)
    where = [col(Message.id) == row_id, or_(sid.is_(None), sid == provider_id)]
    if target == S.delivered:
        values["delivered_at"] = now
    elif target in (S.undelivered, S.failed):
        values["last_error"] = _error(reason)
    return move(session, "report", sources, target, now, where, **values) == 1
