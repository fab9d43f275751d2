"""Enrolment and each course action, through the API, change the planned messages as specified."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from freezegun import freeze_time

from tests.api.conftest import Api
from tests.conftest import NOW


def planned(api: Api, patient_id: int) -> list[dict]:
    return api.messages(patient_id, status="planned")


def test_enrolling_answers_201_with_the_ids_and_plans_the_first_messages(api: Api) -> None:
    created = api.enroll()
    assert created["id"] and created["course_id"]
    assert created["course"]["status"] == "active"
    keys = [m["key"] for m in planned(api, created["id"])]
    assert keys[:2] == ["welcome", "dry_lips"]


def test_pausing_cancels_every_planned_message(api: Api) -> None:
    created = api.enroll()
    response = api.post(f"/v1/courses/{created['course_id']}/pause")
    assert response.status_code == 200
    assert response.json()["status"] == "paused"
    assert planned(api, created["id"]) == []
    assert {m["status"] for m in api.messages(created["id"])} == {"cancelled"}


def test_resuming_plans_again_from_now_without_what_fell_due_in_the_pause(api: Api) -> None:
    created = api.enroll()
    api.post(f"/v1/courses/{created['course_id']}/pause")
    later = NOW + timedelta(days=20)
    with freeze_time(later, real_asyncio=True):
        response = api.post(f"/v1/courses/{created['course_id']}/resume")
    assert response.json()["status"] == "active"
    rows = planned(api, created["id"])
    assert rows
    assert all(datetime.fromisoformat(m["due_at"]) >= later for m in rows)
    assert "dry_lips" not in {m["key"] for m in rows}


def test_stopping_cancels_pending_messages_for_good(api: Api) -> None:
    created = api.enroll()
    stopped = api.post(f"/v1/courses/{created['course_id']}/stop")
    assert stopped.json()["status"] == "cancelled"
    assert planned(api, created["id"]) == []
    again = api.post(f"/v1/courses/{created['course_id']}/resume")
    assert again.status_code == 409
    assert again.json()["detail"][0]["field"] == "status"


def test_ending_the_course_plans_the_end_of_course_message(api: Api) -> None:
    created = api.enroll()
    assert "end_of_course" not in {m["key"] for m in planned(api, created["id"])}
    response = api.post(
        f"/v1/courses/{created['course_id']}/end",
        json={"last_dose_date": (NOW.date() + timedelta(days=2)).isoformat()},
    )
    assert response.status_code == 200
    assert response.json()["last_dose_date"] == "2026-03-18"
    assert "end_of_course" in {m["key"] for m in planned(api, created["id"])}


def test_moving_the_start_date_moves_the_pending_messages(api: Api) -> None:
    created = api.enroll()
    response = api.patch(
        f"/v1/courses/{created['course_id']}",
        json={"start_date": (NOW.date() + timedelta(days=3)).isoformat()},
    )
    assert response.status_code == 200
    dry_lips = next(m for m in planned(api, created["id"]) if m["key"] == "dry_lips")
    assert datetime.fromisoformat(dry_lips["due_at"]).date() == NOW.date() + timedelta(days=5)


def test_changing_the_planned_length_is_recorded_on_the_course(api: Api) -> None:
    created = api.enroll()
    response = api.patch(f"/v1/courses/{created['course_id']}", json={"weeks": 24})
    assert response.status_code == 200
    assert api.get(f"/v1/patients/{created['id']}").json()["course"]["weeks"] == 24


def test_a_pregnancy_test_starts_the_ipledge_countdown(api: Api) -> None:
    created = api.enroll(ipledge=True)
    today = NOW.date().isoformat()
    response = api.post(
        f"/v1/courses/{created['course_id']}/events",
        json={"type": "pregnancy_test", "date": today},
    )
    assert response.status_code == 201
    assert response.json()["date"] == today
    keys = {m["key"] for m in planned(api, created["id"])}
    assert f"ipledge_test:{today}:day5" in keys


def test_pausing_a_paused_course_is_a_conflict_that_names_the_status(api: Api) -> None:
    created = api.enroll()
    api.post(f"/v1/courses/{created['course_id']}/pause")
    response = api.post(f"/v1/courses/{created['course_id']}/pause")
    assert response.status_code == 409
    assert response.json()["message"].startswith("status: course is paused")


def test_enrolling_uses_the_request_time_for_the_plan(api: Api) -> None:
    with freeze_time(NOW + timedelta(days=1), real_asyncio=True):
        created = api.enroll(start_date=(NOW.date() + timedelta(days=1)).isoformat())
    welcome = planned(api, created["id"])[0]
    assert datetime.fromisoformat(welcome["due_at"]).date() == date(2026, 3, 17)
