"""Delivery reports: a row's status only moves forward, whatever the order or the replays."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import insert, update
from sqlmodel import Session, select

from reminders.db import session_scope
from reminders.models import Message
from tests.api.conftest import Api, row_counts
from tests.conftest import NOW

STATUS = "/webhooks/twilio/status"


def sent_row(api: Api, sid: str = "SM0001") -> int:
    """Enroll a patient and mark the welcome SMS sent under `sid`; returns its outbox id."""
    created = api.enroll()
    with session_scope(api.rt.engine) as session:
        row = session.exec(
            select(Message).where(Message.patient_id == created["id"], Message.key == "welcome")
        ).one()
        row.status, row.provider_id, row.sent_at = "sent", sid, NOW
        session.add(row)
        return row.id  # type: ignore[return-value]


def report(api: Api, outbox: int, status: str, sid: str = "SM0001", code: str = ""):
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC1"}
    if code:
        params["ErrorCode"] = code
    return api.twilio(f"{STATUS}?outbox={outbox}", params)


def row(api: Api, outbox: int) -> Message:
    with Session(api.rt.engine) as session:
        found = session.get(Message, outbox)
        assert found is not None
        return found


def test_a_delivered_report_marks_the_row_delivered(api: Api) -> None:
    outbox = sent_row(api)
    response = report(api, outbox, "delivered")
    assert response.status_code == 204
    found = row(api, outbox)
    assert (found.status, found.delivered_at) == ("delivered", NOW)


@pytest.mark.parametrize("code", ["30003", "30004", "30005", "30006", "30007", "30008"])
def test_an_undelivered_report_records_the_carrier_code(api: Api, code: str) -> None:
    outbox = sent_row(api)
    report(api, outbox, "undelivered", code=code)
    found = row(api, outbox)
    assert found.status == "undelivered"
    assert found.last_error is not None and found.last_error.startswith(f"twilio {code}: ")


def test_a_late_sent_report_never_moves_a_delivered_row_back(api: Api) -> None:
    outbox = sent_row(api)
    report(api, outbox, "delivered")
    for late in ("sent", "queued", "sending", "failed", "undelivered"):
        assert report(api, outbox, late).status_code == 204
    assert row(api, outbox).status == "delivered"


def test_a_report_for_an_earlier_send_of_the_row_is_ignored(api: Api) -> None:
    outbox = sent_row(api, sid="SM_NEW")
    report(api, outbox, "failed", sid="SM_OLD", code="30008")
    assert row(api, outbox).status == "sent"


def test_a_report_naming_another_send_is_answered_and_changes_nothing(api: Api) -> None:
    outbox = sent_row(api, sid="SM_ROW")
    before = row_counts(api.rt)
    response = report(api, outbox, "delivered", sid="SM_OTHER")
    assert response.status_code == 204
    assert (row(api, outbox).status, row(api, outbox).provider_id) == ("sent", "SM_ROW")
    assert row_counts(api.rt) == before


def test_a_report_without_a_message_sid_is_refused_naming_it(api: Api) -> None:
    outbox = sent_row(api)
    response = api.twilio(f"{STATUS}?outbox={outbox}", {"MessageStatus": "delivered"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "MessageSid"
    assert row(api, outbox).status == "sent"


def test_a_report_that_arrives_before_the_worker_records_the_send_settles_the_row(
    api: Api,
) -> None:
    outbox = sent_row(api)
    with session_scope(api.rt.engine) as session:
        session.execute(
            update(Message)
            .where(Message.id == outbox)
            .values(status="sending", provider_id=None, sent_at=None, claim_token="t")
        )
    report(api, outbox, "delivered", sid="SM0042")
    found = row(api, outbox)
    assert (found.status, found.provider_id, found.claim_token) == ("delivered", "SM0042", None)


def test_a_21610_failure_opts_the_patient_out_like_a_stop(api: Api) -> None:
    outbox = sent_row(api)
    report(api, outbox, "failed", code="21610")
    patient_id = row(api, outbox).patient_id
    assert api.patient(patient_id).sms_opted_out
    ledger = api.get(f"/v1/patients/{patient_id}/consent").json()["items"]
    assert (ledger[-1]["action"], ledger[-1]["source"]) == ("opt_out", "provider")


def test_a_report_for_an_unknown_row_is_404(api: Api) -> None:
    assert report(api, 999999, "delivered").status_code == 404


def test_a_report_without_a_status_is_refused_naming_it(api: Api) -> None:
    outbox = sent_row(api)
    response = api.twilio(f"{STATUS}?outbox={outbox}", {"MessageSid": "SM0001"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "MessageStatus"


@pytest.mark.parametrize("signature", ["", "Zm9yZ2Vk"])
def test_an_unsigned_or_forged_report_is_403_and_changes_nothing(api: Api, signature: str) -> None:
    outbox = sent_row(api)
    before = row_counts(api.rt)
    params = {"MessageSid": "SM0001", "MessageStatus": "failed", "ErrorCode": "30003"}
    response = api.twilio(f"{STATUS}?outbox={outbox}", params, signature=signature)
    assert response.status_code == 403
    assert row(api, outbox).status == "sent"
    assert row_counts(api.rt) == before


def test_a_signature_for_another_row_is_403(api: Api) -> None:
    outbox = sent_row(api)
    from twilio.request_validator import RequestValidator

    from tests.api.conftest import AUTH_TOKEN, BASE_URL

    params = {"MessageSid": "SM0001", "MessageStatus": "failed"}
    other = RequestValidator(AUTH_TOKEN).compute_signature(
        f"{BASE_URL}{STATUS}?outbox={outbox + 1}", params
    )
    response = api.twilio(f"{STATUS}?outbox={outbox}", params, signature=other)
    assert response.status_code == 403
    assert row(api, outbox).status == "sent"


FINAL = [("delivered", ""), ("undelivered", "30005"), ("failed", "30008"), ("undelivered", "30003")]


def test_a_thousand_shuffled_reports_sent_twice_leave_every_row_in_its_final_state(
    sqlite_api: Api,
) -> None:
    api = sqlite_api
    created = api.enroll()
    rows = 250
    with session_scope(api.rt.engine) as session:
        first = session.exec(select(Message).where(Message.patient_id == created["id"])).first()
        assert first is not None
        base = {
            name: getattr(first, name)
            for name in ("course_id", "patient_id", "channel", "topics", "items", "parts")
        }
        session.execute(
            insert(Message),
            [
                {
                    **base,
                    "key": f"load_{n}",
                    "due_at": NOW,
                    "send_after": NOW,
                    "expires_at": NOW + timedelta(days=1),
                    "status": "sent",
                    "provider_id": f"SM{n:04d}",
                    "sent_at": NOW,
                }
                for n in range(rows)
            ],
        )
    with Session(api.rt.engine) as session:
        ids = {
            m.key: m.id
            for m in session.exec(select(Message).where(Message.key.startswith("load_")))  # type: ignore[attr-defined]
        }
    rng = random.Random(20260316)
    expected, reports = {}, []
    for n in range(rows):
        outbox, sid = ids[f"load_{n}"], f"SM{n:04d}"
        final, code = FINAL[n % len(FINAL)]
        expected[outbox] = (final, code)
        for status, error in (("queued", ""), ("sending", ""), ("sent", ""), (final, code)):
            reports.append((outbox, sid, status, error))
    assert len(reports) == 1000
    replays = reports * 2
    rng.shuffle(replays)
    for outbox, sid, status, code in replays:
        assert report(api, outbox, status, sid=sid, code=code).status_code == 204
    with Session(api.rt.engine) as session:
        found = {
            m.id: m
            for m in session.exec(select(Message).where(Message.key.startswith("load_")))  # type: ignore[attr-defined]
        }
    for outbox, (final, code) in expected.items():
        assert found[outbox].status == final, outbox
        if code:
            assert (
                found[outbox].last_error
                == {
                    "30003": "twilio 30003: unreachable handset",
                    "30005": "twilio 30005: unknown handset",
                    "30008": "twilio 30008: unknown error",
                }[code]
            )
