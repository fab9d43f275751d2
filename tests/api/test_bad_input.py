"""Every bad input answers 4xx naming the field, and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import PHONE, Api, row_counts

ENROLL = {
    "first_name": "Ana",
    "phone": PHONE,
    "channel": "sms",
    "timezone": "America/New_York",
    "start_date": "2026-03-16",
}


def enroll_with(**changes: Any) -> dict[str, Any]:
    body = {**ENROLL, **changes}
    return {name: value for name, value in body.items() if value is not ...}


PATIENTS, PATIENT = "/v1/patients", "/v1/patients/{patient}"
COURSE = "/v1/courses/{course}"
TEST = {"type": "pregnancy_test", "date": "2026-04-01"}
CASES = [
    ("unknown zone", "POST", PATIENTS, enroll_with(timezone="Mars/Olympus"), 422, "timezone"),
    ("bad phone", "POST", PATIENTS, enroll_with(phone="+1555"), 422, "phone"),
    ("bad date", "POST", PATIENTS, enroll_with(start_date="2026-02-30"), 422, "start_date"),
    ("far date", "POST", PATIENTS, enroll_with(start_date="2029-01-01"), 422, "start_date"),
    ("unknown field", "POST", PATIENTS, enroll_with(nickname="Annie"), 422, "nickname"),
    ("missing field", "POST", PATIENTS, enroll_with(timezone=...), 422, "timezone"),
    ("bad channel", "POST", PATIENTS, enroll_with(channel="fax"), 422, "channel"),
    ("email needed", "POST", PATIENTS, enroll_with(channel="both"), 422, "email"),
    ("bad locale", "POST", PATIENTS, enroll_with(locale="fr"), 422, "locale"),
    ("control char", "POST", PATIENTS, enroll_with(first_name="A\x00"), 422, "first_name"),
    ("weeks true", "POST", PATIENTS, enroll_with(weeks=True), 422, "weeks"),
    ("weeks text", "POST", PATIENTS, enroll_with(weeks="20"), 422, "weeks"),
    ("weeks float", "POST", PATIENTS, enroll_with(weeks=20.0), 422, "weeks"),
    ("ipledge 1", "POST", PATIENTS, enroll_with(ipledge=1), 422, "ipledge"),
    ("ipledge text", "POST", PATIENTS, enroll_with(ipledge="yes"), 422, "ipledge"),
    ("patch zone", "PATCH", PATIENT, {"timezone": "Nowhere"}, 422, "timezone"),
    ("patch phone", "PATCH", PATIENT, {"phone": "12"}, 422, "phone"),
    ("patch field", "PATCH", PATIENT, {"start_date": "x"}, 422, "start_date"),
    ("patch empty", "PATCH", PATIENT, {}, 422, "body"),
    ("drop phone", "PATCH", PATIENT, {"phone": None}, 422, "phone"),
    ("course date", "PATCH", COURSE, {"start_date": "16/03/2026"}, 422, "start_date"),
    ("course weeks", "PATCH", COURSE, {"weeks": 0}, 422, "weeks"),
    ("course weeks true", "PATCH", COURSE, {"weeks": True}, 422, "weeks"),
    ("course empty", "PATCH", COURSE, {}, 422, "start_date"),
    ("end date", "POST", f"{COURSE}/end", {"last_dose_date": "soon"}, 422, "last_dose_date"),
    ("end early", "POST", f"{COURSE}/end", {"last_dose_date": "2026-01-01"}, 422, "last_dose_date"),
    ("end far", "POST", f"{COURSE}/end", {"last_dose_date": "9999-12-31"}, 422, "last_dose_date"),
    ("event type", "POST", f"{COURSE}/events", {**TEST, "type": "x"}, 422, "type"),
    ("event future", "POST", f"{COURSE}/events", TEST, 422, "date"),
    ("list status", "GET", f"{PATIENTS}?status=gone", None, 422, "status"),
    ("list limit", "GET", f"{PATIENTS}?limit=0", None, 422, "limit"),
    ("path id", "GET", f"{PATIENTS}/abc", None, 422, "patient_id"),
    ("huge id", "GET", f"{PATIENTS}/99999999999999999999999", None, 422, "patient_id"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_is_refused_by_field_and_writes_nothing(
    api: Api, method: str, path: str, body: Any, status: int, field: str
) -> None:
    created = api.enroll()
    url = path.format(patient=created["id"], course=created["course_id"])
    before = row_counts(api.rt)
    response = api.client.request(method, url, json=body, headers=api.auth())
    assert response.status_code == status, response.text
    error = response.json()
    assert field in [item["field"] for item in error["detail"]]
    assert field in error["message"]
    assert row_counts(api.rt) == before


def test_a_duplicate_enrolment_is_refused_by_phone(api: Api) -> None:
    api.enroll()
    before = row_counts(api.rt)
    response = api.post("/v1/patients", json=ENROLL)
    assert response.status_code == 422
    assert response.json()["detail"][0] == {
        "field": "phone",
        "reason": "already enrolled in an active course at this clinic",
    }
    assert row_counts(api.rt) == before


def test_a_body_that_is_not_json_is_415_naming_the_content_type(api: Api) -> None:
    before = row_counts(api.rt)
    response = api.post(
        "/v1/patients", content=b"first_name=Ana", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["detail"][0]["field"] == "Content-Type"
    assert row_counts(api.rt) == before


def test_malformed_json_is_422_naming_the_body(api: Api) -> None:
    response = api.post(
        "/v1/patients", content=b'{"first_name": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == [{"field": "body", "reason": "not valid JSON"}]


def chunks(size: int):
    """A JSON body sent in pieces, without a Content-Length."""
    yield b'{"first_name": "'
    for _ in range(size // 10_000):
        yield b"x" * 10_000
    yield b'"}'


def test_a_body_too_large_is_413_naming_the_body_and_writes_nothing(api: Api) -> None:
    before = row_counts(api.rt)
    declared = api.post("/v1/patients", json={"first_name": "x" * 100_000})
    streamed = api.post(
        "/v1/patients", content=chunks(100_000), headers={"Content-Type": "application/json"}
    )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["detail"][0]["field"] == "body"
    assert row_counts(api.rt) == before
