"""An opt-out belongs to the number or the address: no new enrolment, clinic or channel switch
undoes it; only the patient does (START)."""

from __future__ import annotations

from sqlmodel import Session, select

from reminders.db import session_scope
from reminders.models import Message
from reminders.tokens import unsubscribe_token
from tests.api.conftest import PHONE, Api

CARRIED = "this number opted out of texts earlier; none are sent until the patient texts START"


def messages(api: Api, patient_id: int, key: str | None = None) -> list[dict]:
    response = api.get(f"/v1/patients/{patient_id}/messages", key)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def sms_rows(api: Api, patient_id: int, key: str | None = None) -> list[dict]:
    return [m for m in messages(api, patient_id, key) if m["channel"] == "sms"]


def ledger(api: Api, patient_id: int, key: str | None = None) -> list[tuple[str, str, str]]:
    items = api.get(f"/v1/patients/{patient_id}/consent", key).json()["items"]
    return [(item["channel"], item["action"], item["source"]) for item in items]


def test_re_enrolling_an_opted_out_number_plans_no_sms(api: Api) -> None:
    first = api.enroll()
    api.text("STOP")
    api.post(f"/v1/courses/{first['course_id']}/stop")
    # Another person at the number (another name): a patient record of their own.
    again = api.enroll(first_name="Bea")
    assert again["id"] != first["id"]
    assert again["sms_opted_out"] is True
    assert sms_rows(api, again["id"]) == []
    assert ledger(api, again["id"]) == [
        ("sms", "opt_in", "api"),
        ("sms", "opt_out", "carried_over"),
    ]
    consent = api.get(f"/v1/patients/{again['id']}/consent").json()
    assert consent["items"][-1]["detail"] == CARRIED
    assert consent["sms_opted_out"] is True


def test_a_returning_patient_who_opted_out_gets_a_new_course_and_stays_opted_out(
    api: Api,
) -> None:
    first = api.enroll()
    api.text("STOP")
    api.post(f"/v1/courses/{first['course_id']}/stop")
    again = api.enroll()  # the same phone and name: the same patient
    assert (again["id"], again["sms_opted_out"]) == (first["id"], True)
    assert again["course_id"] != first["course_id"]
    assert [m for m in sms_rows(api, again["id"]) if m["status"] == "planned"] == []
    # No staff opt-in over the patient's STOP.
    assert ledger(api, again["id"]) == [("sms", "opt_in", "api"), ("sms", "opt_out", "reply")]


def test_an_opted_out_number_stays_opted_out_at_another_clinic(api: Api) -> None:
    api.enroll()
    api.text("Please stop")
    _clinic, other_key = api.add_clinic("Lakeside Skin")
    elsewhere = api.enroll(key=other_key)
    assert elsewhere["sms_opted_out"] is True
    assert messages(api, elsewhere["id"], other_key) == []
    assert ledger(api, elsewhere["id"], other_key)[-1] == ("sms", "opt_out", "carried_over")


def test_start_from_the_number_resumes_every_enrolment_of_it(api: Api) -> None:
    first = api.enroll()
    api.text("STOP")
    _clinic, other_key = api.add_clinic("Lakeside Skin")
    elsewhere = api.enroll(key=other_key)
    api.text("START")
    assert not api.patient(first["id"]).sms_opted_out
    assert not api.patient(elsewhere["id"]).sms_opted_out
    with Session(api.rt.engine) as session:
        planned = session.exec(
            select(Message).where(
                Message.patient_id == elsewhere["id"], Message.status == "pending"
            )
        ).all()
    assert planned


def test_switching_a_patient_to_an_opted_out_number_plans_no_sms(api: Api) -> None:
    first = api.enroll()
    api.text("STOP")
    api.post(f"/v1/courses/{first['course_id']}/stop")
    other = api.enroll(phone="+12125550102")
    assert sms_rows(api, other["id"]) != []
    response = api.patch(f"/v1/patients/{other['id']}", json={"phone": PHONE})
    assert response.status_code == 200
    assert response.json()["sms_opted_out"] is True
    assert {m["status"] for m in sms_rows(api, other["id"])} <= {"suppressed", "cancelled"}
    assert ledger(api, other["id"])[-1] == ("sms", "opt_out", "carried_over")


def test_a_carrier_unsubscribe_stops_the_number_at_every_clinic(api: Api) -> None:
    first = api.enroll()
    _clinic, other_key = api.add_clinic("Lakeside Skin")
    elsewhere = api.enroll(key=other_key)
    with session_scope(api.rt.engine) as session:
        row = session.exec(
            select(Message).where(Message.patient_id == first["id"], Message.key == "welcome")
        ).one()
        row.status, row.provider_id = "sent", "SM21610"
        session.add(row)
        row_id = row.id
    params = {"MessageSid": "SM21610", "MessageStatus": "failed", "ErrorCode": "21610"}
    api.twilio(f"/webhooks/twilio/status?outbox={row_id}", params)
    assert api.patient(first["id"]).sms_opted_out
    assert api.patient(elsewhere["id"]).sms_opted_out
    assert ledger(api, elsewhere["id"], other_key)[-1] == ("sms", "opt_out", "provider")


def test_an_email_unsubscribe_belongs_to_the_address(api: Api) -> None:
    first = api.enroll(channel="email", phone=None, email="ana@example.com")
    _clinic, other_key = api.add_clinic("Lakeside Skin")
    elsewhere = api.enroll(key=other_key, channel="email", phone=None, email="ana@example.com")
    token = unsubscribe_token(api.patient(first["id"]), api.rt.settings)
    api.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert api.patient(elsewhere["id"]).email_opted_out
    _clinic, third_key = api.add_clinic("Hillside Skin")
    third = api.enroll(key=third_key, channel="both", email="ana@example.com")
    assert (third["email_opted_out"], third["sms_opted_out"]) == (True, False)
    assert {m["channel"] for m in messages(api, third["id"], third_key)} == {"sms"}
    assert ledger(api, third["id"], third_key)[-1] == ("email", "opt_out", "carried_over")
