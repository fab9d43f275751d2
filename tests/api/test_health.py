"""/healthz answers whether the database does; /metrics counts messages, backlog and ticks."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from reminders.db import make_engine, session_scope
from reminders.models import Message, WorkerHeartbeat
from tests.api.conftest import METRICS_TOKEN, Api, TestClient
from tests.conftest import NOW, make_runtime


def test_healthz_is_ok_when_the_database_answers(api: Api) -> None:
    response = api.client.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (200, "ok")


def test_healthz_is_503_when_the_database_cannot_be_reached(tmp_path) -> None:
    from reminders.app import create_app

    engine = make_engine(f"sqlite:///{tmp_path}/missing/dir/reminders.db")
    client = TestClient(create_app(make_runtime(engine)))
    response = client.get("/healthz")
    assert (response.status_code, response.json()["database"]) == (503, "unreachable")
    engine.dispose()


def test_metrics_count_messages_by_status_channel_and_topic(api: Api) -> None:
    created = api.enroll()
    api.post(f"/v1/courses/{created['course_id']}/pause")
    text = api.metrics()
    assert 'reminders_messages{status="cancelled",channel="sms",topic="welcome"} 1' in text


def test_metrics_show_the_backlog_due_now_and_its_age(api: Api) -> None:
    api.enroll()
    with session_scope(api.rt.engine) as session:
        session.execute(
            update(Message)
            .where(Message.key == "welcome")
            .values(send_after=NOW - timedelta(minutes=2))
        )
    response = api.client.get("/metrics", headers=api.auth(METRICS_TOKEN))
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "reminders_backlog 1\n" in response.text
    assert "reminders_backlog_oldest_age_seconds 120\n" in response.text


def test_metrics_show_the_age_of_the_last_worker_tick(api: Api) -> None:
    with session_scope(api.rt.engine) as session:
        session.add(
            WorkerHeartbeat(
                worker_id="w1",
                hostname="host",
                pid=1,
                started_at=NOW - timedelta(hours=1),
                last_seen=NOW - timedelta(seconds=30),
                last_tick=NOW - timedelta(seconds=45),
            )
        )
    text = api.metrics()
    assert "reminders_last_tick_age_seconds 45\n" in text
    assert "reminders_workers_alive 1\n" in text


def test_metrics_show_an_infinite_tick_age_before_any_worker_ran(api: Api) -> None:
    assert "reminders_last_tick_age_seconds +Inf\n" in api.metrics()
