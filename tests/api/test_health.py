"""/healthz answers whether the database does; /metrics shows requests and the backlog."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update
from sqlmodel import col

from reminders.db import make_engine, session_scope
from reminders.models import Message, Patient, WorkerHeartbeat
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


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, parsed by prometheus_client, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, frozenset(labels.items()))]


def test_metrics_count_messages_by_status_channel_and_topic(api: Api) -> None:
    created = api.enroll()
    api.post(f"/v1/courses/{created['course_id']}/pause")
    text = api.metrics()
    labels = {"status": "cancelled", "channel": "sms", "topic": "welcome"}
    assert value(text, "reminders_messages", **labels) == 1


def test_the_web_scrape_shows_the_backlog_gauges(api: Api) -> None:
    api.enroll()
    with session_scope(api.rt.engine) as session:
        session.execute(
            update(Message)
            .where(Message.key == "welcome")
            .values(send_after=NOW - timedelta(minutes=10))
        )
        later = select(Message.id).where(Message.key != "welcome").limit(2)
        session.execute(
            update(Message)
            .where(col(Message.id).in_(later.scalar_subquery()))
            .values(status="failed", updated_at=NOW - timedelta(hours=1))
        )
        session.execute(
            update(Patient).values(sms_unreachable_at=NOW, sms_unreachable_reason="invalid number")
        )
    with freeze_time(NOW - timedelta(days=3), real_asyncio=True):
        assert api.text("When do I pick up my refill?").status_code == 200
    api.text("Thanks!")
    response = api.client.get("/metrics", headers=api.auth(METRICS_TOKEN))
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert value(text, "reminders_backlog_up") == 1
    assert value(text, "reminders_messages_due") == 1
    assert value(text, "reminders_messages_overdue") == 1
    assert value(text, "reminders_messages_due_oldest_age_seconds") == 600
    assert value(text, "reminders_messages_unknown") == 0
    assert value(text, "reminders_messages_failed_today") == 2
    assert value(text, "reminders_replies_unread") == 2
    assert value(text, "reminders_replies_unread_oldest_age_seconds") == 3 * 86400
    assert value(text, "reminders_replies_overdue") == 1
    assert value(text, "reminders_contacts_unreachable", channel="sms") == 1
    assert value(text, "reminders_contacts_unreachable", channel="email") == 0
    for name, labels in samples(text):
        for _key, label in labels:
            assert not re.search(r"\d{7,}", label) and "@" not in label, (name, label)
            assert "ana" not in label.lower() and "riverside" not in label.lower(), (name, label)


def test_metrics_show_the_age_of_the_last_worker_tick_and_heartbeat(api: Api) -> None:
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
    assert value(text, "reminders_last_tick_age_seconds") == 45
    assert value(text, "reminders_worker_heartbeat_age_seconds") == 30
    assert value(text, "reminders_workers_alive") == 1


def test_metrics_show_an_infinite_tick_age_before_any_worker_ran(api: Api) -> None:
    text = api.metrics()
    assert math.isinf(value(text, "reminders_last_tick_age_seconds"))
    assert value(text, "reminders_workers_alive") == 0


def test_requests_are_counted_by_route_template_never_by_path(api: Api) -> None:
    created = api.enroll()
    assert api.get(f"/v1/patients/{created['id']}").status_code == 200
    api.client.get("/unsubscribe/not-a-real-token")
    text = api.metrics()
    ok = {"method": "GET", "route": "/v1/patients/{patient_id}", "status": "200"}
    assert value(text, "reminders_http_requests_total", **ok) == 1
    timed = {"method": "GET", "route": "/v1/patients/{patient_id}"}
    assert value(text, "reminders_http_request_duration_seconds_count", **timed) == 1
    routes = {
        dict(labels).get("route")
        for (name, labels) in samples(text)
        if name == "reminders_http_requests_total"
    }
    assert routes == {"/v1/patients", "/v1/patients/{patient_id}", "/unsubscribe/{token}"}


def test_two_apps_keep_their_own_registries(api: Api) -> None:
    from reminders.app import create_app

    first, second = create_app(api.rt), create_app(api.rt)
    assert first.state.metrics.registry is not second.state.metrics.registry
