"""A text is applied once, by its MessageSid, and a STOP is never lost to a busy database."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from reminders.models import ConsentEvent, InboundMessage, InboundText
from reminders.services import apply_unapplied_texts
from tests.api.conftest import Api, row_counts
from tests.conftest import NOW

# How long the test holds SQLite's write lock: longer than a request would wait by default
# for nothing, shorter than INBOUND_WAIT_SECONDS (10 s).
LOCK_SECONDS = 5


def ledger(api: Api, patient_id: int) -> list[tuple[str, str]]:
    items = api.get(f"/v1/patients/{patient_id}/consent").json()["items"]
    return [(item["action"], item["source"]) for item in items]


def test_a_replayed_start_after_a_stop_leaves_the_patient_opted_out(api: Api) -> None:
    created = api.enroll()
    api.text("STOP", sid="SM_STOP_1")
    first = api.text("START", sid="SM_START")
    api.text("STOP", sid="SM_STOP_2")
    before = row_counts(api.rt)
    replay = api.text("START", sid="SM_START")
    assert replay.status_code == 200
    assert replay.text == first.text  # answered as the first delivery was
    assert api.patient(created["id"]).sms_opted_out
    assert row_counts(api.rt) == before
    assert {m["status"] for m in api.messages(created["id"]) if m["channel"] == "sms"} == {
        "suppressed"
    }


def test_a_replayed_stop_is_not_confirmed_twice_in_the_ledger(api: Api) -> None:
    created = api.enroll()
    first = api.text("STOP", sid="SM_STOP")
    api.text("START", sid="SM_START")
    replay = api.text("STOP", sid="SM_STOP")
    assert replay.text == first.text
    assert not api.patient(created["id"]).sms_opted_out
    assert ledger(api, created["id"]) == [
        ("opt_in", "api"),
        ("opt_out", "reply"),
        ("opt_in", "reply"),
    ]


def test_a_replayed_question_is_kept_for_staff_once(api: Api) -> None:
    api.enroll()
    api.text("Can I use my usual sunscreen?", sid="SM_Q")
    api.text("Can I use my usual sunscreen?", sid="SM_Q")
    with Session(api.rt.engine) as session:
        assert len(session.exec(select(InboundMessage)).all()) == 1


def test_a_text_without_a_message_sid_is_refused_naming_it(api: Api) -> None:
    created = api.enroll()
    before = row_counts(api.rt)
    response = api.twilio("/webhooks/twilio/inbound", {"From": "+12125550101", "Body": "STOP"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "MessageSid"
    assert row_counts(api.rt) == before
    assert not api.patient(created["id"]).sms_opted_out


class WriteLock:
    """SQLite's write lock, held from a connection of its own (BEGIN IMMEDIATE)."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("BEGIN IMMEDIATE")
        self.released = threading.Event()

    def release(self) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()
        self.released.set()


def _database_file(api: Api) -> str:
    database = api.rt.engine.url.database
    assert database is not None
    return database


def test_a_stop_waits_for_a_busy_database_and_is_applied(sqlite_api: Api) -> None:
    api = sqlite_api
    created = api.enroll()
    lock = WriteLock(_database_file(api))
    releaser = threading.Timer(LOCK_SECONDS, lock.release)
    releaser.start()
    try:
        response = api.text("STOP", sid="SM_BUSY")
    finally:
        releaser.join()
    # The answer could only be written once the other connection let go of the lock.
    assert lock.released.is_set()
    assert response.status_code == 200
    assert "you are unsubscribed" in response.text
    assert api.patient(created["id"]).sms_opted_out
    assert ledger(api, created["id"])[-1] == ("opt_out", "reply")


def test_a_stop_that_finds_the_database_busy_too_long_is_503_and_keeps_nothing(
    sqlite_api: Api,
) -> None:
    api = sqlite_api
    created = api.enroll()
    api.rt.settings = api.rt.settings.model_copy(update={"inbound_wait_seconds": 1.0})
    before = row_counts(api.rt)
    lock = WriteLock(_database_file(api))
    try:
        response = api.text("STOP", sid="SM_LOCKED")
    finally:
        lock.release()
    assert response.status_code == 503
    assert row_counts(api.rt) == before
    assert not api.patient(created["id"]).sms_opted_out


def test_a_text_kept_but_not_applied_is_answered_200_and_applied_by_the_worker(
    api: Api,
) -> None:
    created = api.enroll()

    def refuse_the_apply(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The database fails the second step only: the text was recorded just before.
        if statement.startswith("UPDATE inboundtext SET applied_at"):
            raise OperationalError(statement, {}, Exception("the disk is full"))

    event.listen(api.rt.engine, "before_cursor_execute", refuse_the_apply)
    try:
        response = api.text("STOP", sid="SM_LATER")
    finally:
        event.remove(api.rt.engine, "before_cursor_execute", refuse_the_apply)
    assert response.status_code == 200
    assert "<Message>" not in response.text
    assert not api.patient(created["id"]).sms_opted_out

    with Session(api.rt.engine) as session:
        from datetime import timedelta

        ctx = api.rt.context(NOW + timedelta(minutes=2))
        assert apply_unapplied_texts(session, ctx=ctx, older_than=timedelta(minutes=1)) == 1
        session.commit()
        kept = session.exec(select(InboundText)).one()
        events = session.exec(select(ConsentEvent).where(ConsentEvent.action == "opt_out")).all()
    assert api.patient(created["id"]).sms_opted_out
    assert (kept.applied_at is not None, kept.body, kept.phone) == (True, None, None)
    assert [(e.source, e.at) for e in events] == [("reply", NOW + timedelta(minutes=2))]


def test_the_worker_leaves_a_text_still_in_its_request_alone(api: Api) -> None:
    from datetime import timedelta

    from reminders.db import session_scope
    from reminders.services import record_text

    created = api.enroll()
    with session_scope(api.rt.engine) as session:
        record_text(
            session,
            message_sid="SM_NOW",
            phone="+12125550101",
            body="STOP",
            opt_out_type=None,
            now=NOW,
        )
    with session_scope(api.rt.engine) as session:
        ctx = api.rt.context(NOW + timedelta(seconds=30))
        assert apply_unapplied_texts(session, ctx=ctx, older_than=timedelta(minutes=1)) == 0
    assert not api.patient(created["id"]).sms_opted_out


@pytest.mark.parametrize("field", ["MessageSid", "SmsSid"])
def test_either_sid_field_names_the_text(api: Api, field: str) -> None:
    created = api.enroll()
    params = {"From": "+12125550101", "Body": "STOP", field: "SM_EITHER"}
    assert api.twilio("/webhooks/twilio/inbound", params).status_code == 200
    assert api.patient(created["id"]).sms_opted_out
