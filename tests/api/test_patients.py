"""Reading and changing patients: pages, contact and zone changes, messages, consent ledger."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.api.conftest import Api


def test_the_patient_list_pages_and_filters_by_course_status(api: Api) -> None:
    first = api.enroll(phone="+12125550101")
    second = api.enroll(phone="+12125550102")
    api.enroll(phone="+12125550103")
    api.post(f"/v1/courses/{second['course_id']}/pause")
    page = api.get("/v1/patients", params={"limit": 2}).json()
    assert (page["total"], [p["id"] for p in page["items"]]) == (3, [first["id"], second["id"]])
    paused = api.get("/v1/patients", params={"status": "paused"}).json()
    assert [p["id"] for p in paused["items"]] == [second["id"]]


def test_a_patient_is_read_with_the_current_course(api: Api) -> None:
    created = api.enroll()
    found = api.get(f"/v1/patients/{created['id']}").json()
    assert found["course_id"] == created["course_id"]
    assert found["phone"] == "+12125550101"


def test_changing_the_time_zone_replans_pending_messages(api: Api) -> None:
    created = api.enroll()
    before = {m["key"]: m["due_at"] for m in api.messages(created["id"], status="planned")}
    response = api.patch(f"/v1/patients/{created['id']}", json={"timezone": "America/Los_Angeles"})
    assert response.status_code == 200
    assert response.json()["timezone"] == "America/Los_Angeles"
    after = {m["key"]: m["due_at"] for m in api.messages(created["id"], status="planned")}
    moved = datetime.fromisoformat(after["dry_lips"]) - datetime.fromisoformat(before["dry_lips"])
    assert moved == timedelta(hours=3)


def test_switching_to_email_cancels_pending_sms_and_plans_email(api: Api) -> None:
    created = api.enroll()
    response = api.patch(
        f"/v1/patients/{created['id']}", json={"channel": "email", "email": "ana@example.com"}
    )
    assert response.status_code == 200
    rows = api.messages(created["id"])
    assert {m["status"] for m in rows if m["channel"] == "sms"} == {"cancelled"}
    assert {m["status"] for m in rows if m["channel"] == "email"} == {"planned"}
    ledger = api.get(f"/v1/patients/{created['id']}/consent").json()["items"]
    assert (ledger[-1]["channel"], ledger[-1]["action"], ledger[-1]["source"]) == (
        "email",
        "opt_in",
        "api",
    )


def test_staff_cannot_switch_on_a_channel_the_patient_stopped(api: Api) -> None:
    created = api.enroll(channel="email", email="ana@example.com")
    api.text("STOP")
    response = api.patch(f"/v1/patients/{created['id']}", json={"channel": "both"})
    assert response.status_code == 409
    assert response.json()["detail"][0]["field"] == "channel"
    assert api.get(f"/v1/patients/{created['id']}").json()["channel"] == "email"


def test_the_consent_ledger_lists_every_opt_in_and_opt_out_with_its_source(api: Api) -> None:
    created = api.enroll()
    api.text("STOP")
    api.text("START")
    ledger = api.get(f"/v1/patients/{created['id']}/consent").json()
    events = [(e["channel"], e["action"], e["source"]) for e in ledger["items"]]
    assert events == [
        ("sms", "opt_in", "api"),
        ("sms", "opt_out", "reply"),
        ("sms", "opt_in", "reply"),
    ]
    assert ledger["sms_opted_out"] is False


def test_messages_show_topics_channel_status_and_error(api: Api) -> None:
    created = api.enroll()
    api.post(f"/v1/courses/{created['course_id']}/pause")
    welcome = api.messages(created["id"])[0]
    assert (welcome["key"], welcome["topics"], welcome["channel"]) == (
        "welcome",
        ["welcome"],
        "sms",
    )
    assert (welcome["status"], welcome["error"]) == ("cancelled", "course paused")
