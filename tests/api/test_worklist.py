"""GET /v1/worklist: the clinic's worklist, scoped to the key's clinic."""

from __future__ import annotations

from reminders.db import session_scope
from reminders.models import Channel, Patient
from reminders.services.reachability import mark_unreachable
from tests.api.conftest import Api
from tests.conftest import NOW


def test_get_worklist_shows_only_the_keys_clinic(api: Api) -> None:
    created = api.enroll()
    with session_scope(api.rt.engine) as session:
        found = session.get(Patient, created["id"])
        assert found is not None
        mark_unreachable(
            session, patient=found, channel=Channel.sms, reason="twilio 21211", now=NOW
        )
    other, key = api.add_clinic("Lakeside Skin")
    answer = api.get("/v1/worklist")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(i["kind"], i["patient_id"]) for i in body["items"]] == [
        ("unreachable", created["id"]),
        ("no_channel", created["id"]),
    ]
    assert body["counts"]["unreachable"] == 1 and body["overdue"] == 0
    assert body["items"][0]["since"] == "2026-03-16T18:00:00Z"
    assert api.get("/v1/worklist", key).json()["items"] == []
    assert api.client.get("/v1/worklist").status_code == 401


def test_patching_the_phone_clears_the_state_and_releases_what_was_held(api: Api) -> None:
    created = api.enroll()
    with session_scope(api.rt.engine) as session:
        found = session.get(Patient, created["id"])
        assert found is not None
        held = mark_unreachable(
            session, patient=found, channel=Channel.sms, reason="twilio 21211", now=NOW
        )
    assert held > 0
    before = api.get(f"/v1/patients/{created['id']}").json()
    assert before["sms_unreachable_reason"] == "twilio 21211"
    assert {m["status"] for m in api.messages(created["id"], status="held")} == {"held"}
    answer = api.patch(f"/v1/patients/{created['id']}", json={"phone": "+12125550177"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["sms_unreachable_at"] is None
    assert api.messages(created["id"], status="held") == []
    assert api.get("/v1/worklist").json()["items"] == []
