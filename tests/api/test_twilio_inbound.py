"""Patients' texts through the signed webhook: STOP, START, HELP, anything else."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from reminders.models import InboundMessage, InboundText
from tests.api.conftest import PHONE, Api, row_counts

INBOUND = "/webhooks/twilio/inbound"


def sms_statuses(api: Api, patient_id: int) -> set[str]:
    return {m["status"] for m in api.messages(patient_id) if m["channel"] == "sms"}


@pytest.mark.parametrize("word", ["Stop.", " stop ", "STOPALL", "unsubscribe"])
def test_a_stop_keyword_opts_out_and_suppresses_pending_sms(api: Api, word: str) -> None:
    created = api.enroll()
    response = api.text(word)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "you are unsubscribed" in response.text
    assert sms_statuses(api, created["id"]) == {"suppressed"}
    assert api.patient(created["id"]).sms_opted_out


def test_a_second_stop_is_neither_confirmed_nor_recorded_again(api: Api) -> None:
    created = api.enroll()
    api.text("STOP")
    before = row_counts(api.rt)
    again = api.text("stop")
    assert "<Message>" not in again.text
    ledger = api.get(f"/v1/patients/{created['id']}/consent").json()["items"]
    assert [e["action"] for e in ledger] == ["opt_in", "opt_out"]
    assert row_counts(api.rt)["consentevent"] == before["consentevent"]


def test_start_opts_back_in_and_plans_the_sms_again(api: Api) -> None:
    created = api.enroll()
    api.text("STOP")
    response = api.text("start")
    assert "Reply STOP to opt out" in response.text
    assert "planned" in sms_statuses(api, created["id"])
    assert not api.patient(created["id"]).sms_opted_out


def test_help_replies_with_clinic_contact_frequency_rates_and_how_to_stop(api: Api) -> None:
    api.enroll()
    text = api.text("help").text
    for part in (
        "Riverside Dermatology: (212) 555-0199",
        "up to 3 msgs/week",
        "Msg&amp;data rates may apply",
        "Reply STOP to opt out",
    ):
        assert part in text


def test_help_is_answered_in_the_patients_language(api: Api) -> None:
    api.enroll(locale="es")
    assert "Responda STOP para cancelar" in api.text("INFO").text


def test_any_other_text_says_staff_will_read_it_and_is_kept_unread(api: Api) -> None:
    created = api.enroll()
    response = api.text("My lips hurt, is that normal?", sid="SM0001")
    assert "Riverside Dermatology got your message and staff will read it" in response.text
    assert "call (212) 555-0199; in an emergency call 911" in response.text
    with Session(api.rt.engine) as session:
        kept = session.exec(select(InboundMessage)).all()
    assert [(m.patient_id, m.course_id, m.kind, m.body, m.state) for m in kept] == [
        (created["id"], created["course_id"], "message", "My lips hurt, is that normal?", "unread")
    ]


def test_a_webhook_delivered_twice_is_kept_once(api: Api) -> None:
    api.enroll()
    api.text("Thanks!", sid="SM0002")
    api.text("Thanks!", sid="SM0002")
    assert row_counts(api.rt)["inboundmessage"] == 1


def test_a_number_enrolled_at_two_clinics_is_opted_out_at_both(api: Api) -> None:
    first = api.enroll()
    _clinic, other_key = api.add_clinic("Lakeside Skin")
    second = api.enroll(key=other_key)
    response = api.text("STOP")
    assert "Lakeside Skin / Riverside Dermatology" in response.text
    assert api.patient(first["id"]).sms_opted_out and api.patient(second["id"]).sms_opted_out
    assert sms_statuses(api, first["id"]) == {"suppressed"}


def test_an_unknown_number_gets_an_empty_answer_and_only_its_message_sid_is_kept(
    api: Api,
) -> None:
    api.enroll()
    before = row_counts(api.rt)
    response = api.text("STOP", phone="+12125550199", sid="SM0404")
    assert response.status_code == 200
    assert "<Message>" not in response.text
    assert row_counts(api.rt) == {**before, "inboundtext": before["inboundtext"] + 1}
    with Session(api.rt.engine) as session:
        kept = session.exec(select(InboundText)).one()
    assert (kept.message_sid, kept.phone, kept.body) == ("SM0404", None, None)


def test_twilio_advanced_opt_out_is_honoured_without_a_second_reply(api: Api) -> None:
    created = api.enroll()
    params = {"From": PHONE, "Body": "arret", "OptOutType": "STOP", "MessageSid": "SM0003"}
    response = api.twilio(INBOUND, params)
    assert "<Message>" not in response.text
    assert api.patient(created["id"]).sms_opted_out


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
def test_a_missing_or_forged_signature_is_403_and_changes_nothing(api: Api, signature: str) -> None:
    created = api.enroll()
    before = row_counts(api.rt)
    response = api.twilio(INBOUND, {"From": PHONE, "Body": "STOP"}, signature=signature)
    assert response.status_code == 403
    assert not api.patient(created["id"]).sms_opted_out
    assert row_counts(api.rt) == before


def test_a_signature_for_other_parameters_is_403(api: Api) -> None:
    created = api.enroll()
    from twilio.request_validator import RequestValidator

    from tests.api.conftest import AUTH_TOKEN, BASE_URL

    signed = RequestValidator(AUTH_TOKEN).compute_signature(
        f"{BASE_URL}{INBOUND}", {"From": PHONE, "Body": "hello"}
    )
    response = api.twilio(INBOUND, {"From": PHONE, "Body": "STOP"}, signature=signed)
    assert response.status_code == 403
    assert not api.patient(created["id"]).sms_opted_out
