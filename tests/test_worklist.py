"""The clinic's worklist lists each kind of item that needs a person, oldest first, in a few
queries whatever the number of patients; the API and the CLI show it. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import event, update
from typer.testing import CliRunner

from reminders.cli import app
from reminders.config import get_settings
from reminders.db import read_scope, session_scope
from reminders.models import Channel, Clinic, Message, Patient
from reminders.runtime import Runtime
from reminders.services import opt_out, record_event
from reminders.services.reachability import mark_unreachable
from reminders.services.worklist import KINDS, counts, monthly_window, worklist
from tests.conftest import NOW
from tests.helpers import add_clinic, add_patient, receive


def items_of(rt: Runtime, clinic: Clinic, now=NOW):  # type: ignore[no-untyped-def]
    with read_scope(rt.engine) as session:
        return worklist(session, clinic_id=clinic.id, now=now, careplan=rt.careplan, reply_hours=4)


def unreachable(rt: Runtime, patient: Patient, channel: Channel, at=NOW) -> None:  # type: ignore[no-untyped-def]
    with session_scope(rt.engine) as session:
        found = session.get(Patient, patient.id)
        assert found is not None
        mark_unreachable(session, patient=found, channel=channel, reason="twilio 21211", now=at)


def a_clinic_with_every_kind(rt: Runtime) -> tuple[Clinic, dict[str, int]]:
    """One patient for each kind of item; their ids by kind."""
    clinic = add_clinic(rt, NOW)
    day = NOW.date()
    # Wrote five hours ago (listed) and an hour ago (not yet).
    writer, _ = add_patient(rt, clinic, NOW - timedelta(hours=6), phone="+12125550111")
    receive(rt, phone="+12125550111", body="Is a rash normal?", at=NOW - timedelta(hours=5))
    receive(rt, phone="+12125550111", body="Also my lips", at=NOW - timedelta(hours=1))
    # On both channels, the phone unreachable: email still reaches them.
    both, _ = add_patient(
        rt, clinic, NOW, phone="+12125550112", email="b@example.com", channel="both"
    )
    unreachable(rt, both, Channel.sms, at=NOW - timedelta(days=1))
    # Opted out of the only channel they chose.
    stopped, _ = add_patient(rt, clinic, NOW, phone="+12125550113")
    with session_scope(rt.engine) as session:
        found = session.get(Patient, stopped.id)
        assert found is not None
        opt_out(session, patient=found, channel=Channel.sms, source="reply", now=NOW)
    # Three days before the planned end, no last dose recorded.
    ending, _ = add_patient(
        rt,
        clinic,
        NOW,
        phone="+12125550114",
        start_date=(day - timedelta(weeks=20) + timedelta(days=3)).isoformat(),
    )
    # iPLEDGE: the first monthly window opened yesterday, no test recorded; and one whose test
    # is recorded, not listed.
    start = (day - timedelta(days=28)).isoformat()
    waiting, _ = add_patient(rt, clinic, NOW, phone="+12125550115", start_date=start, ipledge=True)
    tested, tested_course = add_patient(
        rt, clinic, NOW, phone="+12125550116", start_date=start, ipledge=True
    )
    with session_scope(rt.engine) as session:
        record_event(
            session, course=tested_course, type="pregnancy_test", on=day, ctx=rt.context(NOW)
        )
    # A message that ended failed an hour ago.
    failing, _ = add_patient(rt, clinic, NOW, phone="+12125550117")
    with session_scope(rt.engine) as session:
        session.execute(
            update(Message)
            .where(Message.patient_id == failing.id, Message.key == "welcome")  # type: ignore[arg-type]
            .values(status="failed", last_error="twilio 21408", updated_at=NOW - timedelta(hours=1))
        )
    ids = {
        "reply": writer.id,
        "unreachable": both.id,
        "no_channel": stopped.id,
        "confirm_end": ending.id,
        "ipledge_test": waiting.id,
        "failed": failing.id,
    }
    return clinic, ids  # type: ignore[return-value]


def test_the_worklist_lists_each_kind_oldest_first(any_runtime: Runtime) -> None:
    clinic, ids = a_clinic_with_every_kind(any_runtime)
    items = items_of(any_runtime, clinic)
    assert {(item.kind, item.patient_id) for item in items} == set(ids.items())
    assert counts(items) == dict.fromkeys(KINDS, 1)
    assert [item.since for item in items] == sorted(item.since for item in items)
    by_kind = {item.kind: item for item in items}
    assert by_kind["reply"].since == NOW - timedelta(hours=5)
    assert by_kind["reply"].link.startswith(f"/clinic/patients/{ids['reply']}#reply-")
    assert by_kind["unreachable"].detail.startswith("phone unreachable: twilio 21211")
    assert by_kind["no_channel"].since == NOW
    assert "confirm the last dose" in by_kind["confirm_end"].detail
    assert by_kind["ipledge_test"].detail.startswith("month 1: ")
    assert by_kind["failed"].detail == "failed: twilio 21408"
    assert all(item.course_id is not None for item in items)
    # A Monday afternoon: nothing has waited a business day yet (the weekend does not count).
    assert {item.kind for item in items if item.overdue} == set()
    later = items_of(any_runtime, clinic, now=NOW + timedelta(days=2))
    assert {"reply", "unreachable", "no_channel", "failed"} <= {i.kind for i in later if i.overdue}


def test_the_worklist_costs_the_same_few_queries_for_one_patient_or_many(
    any_runtime: Runtime,
) -> None:
    clinic, _ids = a_clinic_with_every_kind(any_runtime)

    def statements() -> int:
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(any_runtime.engine, "before_cursor_execute", listener)
        try:
            items_of(any_runtime, clinic)
        finally:
            event.remove(any_runtime.engine, "before_cursor_execute", listener)
        return len(seen)

    few = statements()
    for n in range(10):
        patient, _ = add_patient(any_runtime, clinic, NOW, phone=f"+1212555020{n}")
        unreachable(any_runtime, patient, Channel.sms)
    assert statements() == few <= 10


@pytest.mark.parametrize(
    ("today_offset", "tests", "expected"),
    [(26, [], None), (27, [], (1, 27)), (30, [], (1, 27)), (31, [], None), (28, [21], None)],
)
def test_a_monthly_window_is_open_from_three_days_before_the_visit_until_it(
    runtime: Runtime, today_offset: int, tests: list[int], expected: tuple[int, int] | None
) -> None:
    start = NOW.date()
    found = monthly_window(
        start=start,
        end=start + timedelta(weeks=20),
        tests=[start + timedelta(days=t) for t in tests],
        today=start + timedelta(days=today_offset),
        careplan=runtime.careplan,
    )
    if expected is None:
        assert found is None
    else:
        assert found == (expected[0], start + timedelta(days=expected[1]))


def test_the_worklist_command_exits_1_when_something_is_overdue(
    any_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = any_runtime
    monkeypatch.setenv("DATABASE_URL", rt.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    clinic = add_clinic(rt, NOW)
    patient, _ = add_patient(rt, clinic, NOW)
    runner = CliRunner()
    try:
        with freeze_time(NOW):
            empty = runner.invoke(app, ["worklist", "--clinic", str(clinic.id)])
        unreachable(rt, patient, Channel.sms)
        with freeze_time(NOW + timedelta(hours=1)):
            fresh = runner.invoke(app, ["worklist", "--clinic", str(clinic.id)])
        with freeze_time(NOW + timedelta(days=2)):
            late = runner.invoke(app, ["worklist", "--clinic", str(clinic.id), "--format", "json"])
    finally:
        get_settings.cache_clear()
    assert (empty.exit_code, empty.stdout.strip()) == (0, "nothing waits for staff")
    assert fresh.exit_code == 0 and "unreachable  patient" in fresh.stdout
    assert late.exit_code == 1, late.output
    data = json.loads(late.stdout)
    assert data["overdue"] == 2 and data["counts"]["no_channel"] == 1
