"""The outbox lifecycle: every move the table allows works, every other one is refused."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from reminders import lifecycle
from reminders.db import session_scope
from reminders.lifecycle import EVENTS, TRANSITIONS, Hold, TransitionRefused
from reminders.models import Channel, Message, MessageStatus
from tests.conftest import NOW
from tests.helpers import seed_due

STATUSES = list(MessageStatus)


def a_row(engine: Engine, status: MessageStatus) -> int:
    """A fresh outbox row of its own course, put straight into `status`."""
    seed_due(engine, 1, NOW)
    with session_scope(engine) as session:
        row = session.exec(select(Message).order_by(col(Message.id).desc())).first()
        assert row is not None
        row.status = status
        row.claim_token = "held"
        session.add(row)
        return row.id  # type: ignore[return-value]


def status_of(engine: Engine, row_id: int) -> MessageStatus:
    with Session(engine) as session:
        row = session.get(Message, row_id)
        assert row is not None
        return MessageStatus(row.status)


def test_the_table_names_only_known_states_and_pending_is_the_only_way_in() -> None:
    assert {target for source, target in TRANSITIONS if source is None} == {MessageStatus.pending}
    assert all(source is None or source in STATUSES for source, _target in TRANSITIONS)


def test_every_event_moves_a_row_exactly_where_the_table_allows_it(any_engine: Engine) -> None:
    probes = {status: a_row(any_engine, status) for status in STATUSES}
    moved, refused = set(), 0
    for event, source, target in itertools.product(sorted(EVENTS), STATUSES, STATUSES):
        allowed = event in TRANSITIONS.get((source, target), ())
        # A refused move must not touch any row: the probe in that state keeps it.
        row_id = a_row(any_engine, source) if allowed else probes[source]
        try:
            with session_scope(any_engine) as session:
                where = [col(Message.id) == row_id]
                changed = lifecycle.move(session, event, (source,), target, NOW, where)
        except TransitionRefused:
            assert not allowed, (event, source, target)
            assert status_of(any_engine, row_id) == source, "a refused move wrote nothing"
            refused += 1
            continue
        assert allowed, (event, source, target)
        assert changed == 1 and status_of(any_engine, row_id) == target
        moved.add((source, target))
    assert moved == {pair for pair in TRANSITIONS if pair[0] is not None}
    allowed_moves = sum(len(events) for (source, _), events in TRANSITIONS.items() if source)
    assert refused == len(EVENTS) * len(STATUSES) ** 2 - allowed_moves


@pytest.mark.parametrize("target", [status for status in STATUSES if status != "pending"])
def test_nothing_but_pending_may_be_written_as_a_new_row(target: MessageStatus) -> None:
    with pytest.raises(TransitionRefused):
        lifecycle.require("plan", [None], target)


def test_a_claimed_row_cannot_be_settled_as_delivered_without_a_report(engine: Engine) -> None:
    row_id = a_row(engine, MessageStatus.sending)
    with session_scope(engine) as session, pytest.raises(TransitionRefused):
        lifecycle.settle_many(
            session,
            token="held",
            outcomes=[(row_id, MessageStatus.delivered, "no", None)],
            now=NOW,
        )
    assert status_of(engine, row_id) == MessageStatus.sending


def test_each_named_move_makes_the_move_its_name_says(engine: Engine) -> None:
    later = NOW + timedelta(hours=1)

    def after(status: MessageStatus, move) -> MessageStatus:  # type: ignore[no-untyped-def]
        row_id = a_row(engine, status)
        with session_scope(engine) as session:
            move(session, row_id)
        return status_of(engine, row_id)

    held = lambda row_id: Hold(row_id, "held")  # noqa: E731

    def end(session: Session, hold: Hold, target: MessageStatus) -> bool:
        return lifecycle.end(session, hold, target, reason="x", now=NOW, attempted=True)

    def patient_of(session: Session, row_id: int) -> int:
        row = session.get(Message, row_id)
        assert row is not None
        return row.patient_id

    sending, S = MessageStatus.sending, MessageStatus
    moves = {
        "retry": (sending, lambda s, r: lifecycle.retry(s, held(r), at=later, reason="x", now=NOW)),
        "defer": (sending, lambda s, r: lifecycle.defer(s, held(r), at=later, reason="x", now=NOW)),
        "fail": (sending, lambda s, r: end(s, held(r), S.failed)),
        "expire": (sending, lambda s, r: end(s, held(r), S.expired)),
        "suppress": (sending, lambda s, r: end(s, held(r), S.suppressed)),
        "hold": (sending, lambda s, r: end(s, held(r), S.held)),
        "hold_pending": (
            S.pending,
            lambda s, r: lifecycle.hold_pending(
                s, patient_id=patient_of(s, r), channel=Channel.sms, now=NOW, reason="x"
            ),
        ),
        "release": (
            S.held,
            lambda s, r: lifecycle.release(
                s, patient_id=patient_of(s, r), channel=Channel.sms, now=NOW
            ),
        ),
        "release_late": (
            S.held,
            lambda s, r: lifecycle.release(
                s, patient_id=patient_of(s, r), channel=Channel.sms, now=NOW + timedelta(days=30)
            ),
        ),
        "send": (
            sending,
            lambda s, r: lifecycle.record_sent(s, token="held", sent=[(r, "SM1", NOW)], now=NOW),
        ),
        "cancel": (
            S.pending,
            lambda s, r: lifecycle.cancel_pending(s, ids=[r], now=NOW, reason="x"),
        ),
        "settle": (
            S.unknown,
            lambda s, r: lifecycle.settle_unknown(s, row_id=r, provider_id="SM1", now=NOW),
        ),
        "report": (
            S.sent,
            lambda s, r: lifecycle.report(
                s, row_id=r, target=S.delivered, provider_id="SM1", reason=None, now=NOW
            ),
        ),
    }
    expected = {
        "retry": S.pending,
        "defer": S.pending,
        "fail": S.failed,
        "expire": S.expired,
        "suppress": S.suppressed,
        "hold": S.held,
        "hold_pending": S.held,
        "release": S.pending,
        "release_late": S.expired,
        "send": S.sent,
        "cancel": S.cancelled,
        "settle": S.sent,
        "report": S.delivered,
    }
    for name, (source, move) in moves.items():
        target = after(source, move)
        assert target == expected[name], name
        assert (source, target) in TRANSITIONS, name


def test_a_move_of_a_claimed_row_needs_its_token(engine: Engine) -> None:
    row_id = a_row(engine, MessageStatus.sending)
    with session_scope(engine) as session:
        other = Hold(row_id, "someone-else")
        assert not lifecycle.end(
            session, other, MessageStatus.failed, reason="x", now=NOW, attempted=True
        )
    assert status_of(engine, row_id) == MessageStatus.sending


def test_planning_never_rewrites_history(engine: Engine) -> None:
    row_id = a_row(engine, MessageStatus.sent)
    with Session(engine) as session:
        row = session.get(Message, row_id)
        assert row is not None
        values = {
            "course_id": row.course_id,
            "patient_id": row.patient_id,
            "key": row.key,
            "channel": Channel.sms.value,
            "topics": "welcome",
            "items": "welcome",
            "parts": json.dumps([["welcome", {}]]),
            "priority": 100,
            "due_at": NOW + timedelta(days=1),
            "send_after": NOW + timedelta(days=1),
            "expires_at": NOW + timedelta(days=2),
            "created_at": NOW,
            "updated_at": NOW,
        }
    with session_scope(engine) as session:
        lifecycle.plan(session, [values])
    assert status_of(engine, row_id) == MessageStatus.sent
