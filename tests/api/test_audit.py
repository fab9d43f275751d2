"""The audit trail: who saw or changed which patient, when and from where; never a contact."""

from __future__ import annotations

import json
from typing import Any

from reminders.db import session_scope
from reminders.staff import create_staff
from tests.api.conftest import PHONE, Api
from tests.conftest import NOW
from tests.web.conftest import PASSWORD, csrf, signed_in_client

EMAIL = "sam@riverside.example"


def entries(api: Api, key: str | None = None, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/v1/audit", key, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def staff_client(api: Api):  # type: ignore[no-untyped-def]
    with session_scope(api.rt.engine) as session:
        create_staff(session, clinic_id=api.clinic.id, email=EMAIL, password=PASSWORD, now=NOW)  # type: ignore[arg-type]
    return signed_in_client(api.rt, EMAIL, base_url="https://testserver")


def test_an_api_read_and_an_api_enrolment_are_recorded(api: Api) -> None:
    patient = api.enroll()
    api.get(f"/v1/patients/{patient['id']}")
    read, enrolled = entries(api)
    assert (read["action"], read["patient_id"]) == ("patient.read", patient["id"])
    assert (read["actor_kind"], read["actor"], read["address"]) == ("key", "default", "testclient")
    assert (enrolled["action"], enrolled["patient_id"]) == ("patient.enroll", patient["id"])
    assert enrolled["detail"] == f"course {patient['course_id']}"


def test_every_api_call_on_a_patient_is_recorded(api: Api) -> None:
    patient = api.enroll()
    pid, course = patient["id"], patient["course_id"]
    api.get("/v1/patients")
    api.get(f"/v1/patients/{pid}/messages")
    api.get(f"/v1/patients/{pid}/consent")
    api.patch(f"/v1/patients/{pid}", json={"locale": "es"})
    api.post(f"/v1/courses/{course}/pause")
    actions = [entry["action"] for entry in entries(api)]
    assert actions == [
        "course.pause",
        "patient.update",
        "patient.consent",
        "patient.messages",
        "patient.list",
        "patient.enroll",
    ]
    assert entries(api)[1]["detail"] == "locale"  # the field changed, never its value


def test_a_timeline_view_and_a_web_enrolment_are_recorded(api: Api) -> None:
    client = staff_client(api)
    with client:
        token = csrf(client, "/clinic/patients/new")
        form = {
            "csrf_token": token,
            "first_name": "Luis",
            "phone": "+12125550102",
            "channel": "sms",
            "timezone": "America/New_York",
            "start_date": NOW.date().isoformat(),
        }
        enrolled = client.post("/clinic/patients/new", data=form)
        patient_id = int(enrolled.headers["location"].rsplit("/", 1)[1])
        assert client.get(f"/clinic/patients/{patient_id}").status_code == 200
    actions = [(e["action"], e["actor"], e["patient_id"], e["detail"]) for e in entries(api)]
    assert ("patient.view", EMAIL, patient_id, "timeline") in actions
    assert ("patient.enroll", EMAIL, patient_id, "course 1") in actions
    view = next(e for e in entries(api) if e["action"] == "patient.view")
    assert view["actor_kind"] == "user" and view["address"] == "testclient"


def test_the_trail_holds_no_name_contact_or_text(api: Api) -> None:
    patient = api.enroll(first_name="Zenobia", email="zenobia@example.com", channel="both")
    api.get(f"/v1/patients/{patient['id']}")
    api.patch(f"/v1/patients/{patient['id']}", json={"phone": "+12125550199"})
    api.text("Is it normal to have dry lips?")
    client = staff_client(api)
    with client:
        client.get(f"/clinic/patients/{patient['id']}")
        client.get("/clinic/patients", params={"q": "zenobia@example.com"})
    dumped = json.dumps(entries(api, limit=500))
    for secret in ("Zenobia", "zenobia@", PHONE, "5550199", "dry lips"):
        assert secret.lower() not in dumped.lower(), secret


def test_the_trail_is_paged_and_scoped_to_the_keys_clinic(api: Api) -> None:
    patient = api.enroll()
    for _ in range(4):
        api.get(f"/v1/patients/{patient['id']}")
    _other, other_key = api.add_clinic("Lakeside Skin")
    page = api.get("/v1/audit", params={"limit": 2, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (5, 2, 1, 2)
    assert entries(api, patient_id=patient["id"], limit=10)[-1]["action"] == "patient.enroll"
    assert entries(api, other_key) == []


def test_the_admin_page_shows_the_trail(api: Api) -> None:
    with session_scope(api.rt.engine) as session:
        create_staff(
            session,
            clinic_id=api.clinic.id,  # type: ignore[arg-type]
            email="ada@riverside.example",
            password=PASSWORD,
            role="admin",
            now=NOW,
        )
    patient = api.enroll()
    client = signed_in_client(api.rt, "ada@riverside.example", base_url="https://testserver")
    with client:
        page = client.get("/clinic/audit")
    assert page.status_code == 200
    assert "patient.enroll" in page.text and f"/clinic/patients/{patient['id']}" in page.text
