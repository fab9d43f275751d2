"""Every clinic route needs the clinic's key, and sees only that clinic's records."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api, row_counts

ROUTES = [
    ("GET", "/v1/patients"),
    ("POST", "/v1/patients"),
    ("GET", "/v1/patients/1"),
    ("PATCH", "/v1/patients/1"),
    ("GET", "/v1/patients/1/messages"),
    ("GET", "/v1/patients/1/consent"),
    ("POST", "/v1/courses/1/pause"),
    ("POST", "/v1/courses/1/resume"),
    ("POST", "/v1/courses/1/stop"),
    ("POST", "/v1/courses/1/end"),
    ("PATCH", "/v1/courses/1"),
    ("POST", "/v1/courses/1/events"),
    ("POST", "/v1/imports"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_request_without_a_key_is_401_with_a_bearer_challenge(
    sqlite_api: Api, method: str, path: str
) -> None:
    response = sqlite_api.client.request(method, path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"][0]["field"] == "Authorization"


def test_a_wrong_key_is_401(api: Api) -> None:
    created = api.enroll()
    response = api.get(f"/v1/patients/{created['id']}", key="rk_not-a-key")
    assert response.status_code == 401


def test_a_key_in_another_scheme_is_401(api: Api) -> None:
    response = api.client.get("/v1/patients", headers={"Authorization": f"Basic {api.key}"})
    assert response.status_code == 401


def test_another_clinics_key_reads_none_of_this_clinics_records(api: Api) -> None:
    created = api.enroll()
    _other, other_key = api.add_clinic("Lakeside Skin")
    for path in ("", "/messages", "/consent"):
        response = api.get(f"/v1/patients/{created['id']}{path}", key=other_key)
        assert response.status_code == 404, path
    assert api.get("/v1/patients", key=other_key).json()["total"] == 0


def test_another_clinics_key_changes_nothing_of_this_clinics_records(api: Api) -> None:
    created = api.enroll(ipledge=True)
    _other, other_key = api.add_clinic("Lakeside Skin")
    course = f"/v1/courses/{created['course_id']}"
    # Reading the messages is itself written to the audit trail: read them first.
    before_messages = api.messages(created["id"])
    before_rows = row_counts(api.rt)
    attempts = [
        api.post(f"{course}/pause", key=other_key),
        api.post(f"{course}/stop", key=other_key),
        api.post(f"{course}/end", key=other_key, json={"last_dose_date": "2026-03-16"}),
        api.patch(course, key=other_key, json={"weeks": 30}),
        api.post(
            f"{course}/events",
            key=other_key,
            json={"type": "pregnancy_test", "date": "2026-03-16"},
        ),
        api.patch(f"/v1/patients/{created['id']}", key=other_key, json={"locale": "es"}),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert row_counts(api.rt) == before_rows
    assert api.messages(created["id"]) == before_messages
    assert api.get(f"/v1/patients/{created['id']}").json()["locale"] == "en"


def test_a_missing_id_and_another_clinics_id_answer_alike(api: Api) -> None:
    created = api.enroll()
    _other, other_key = api.add_clinic("Lakeside Skin")
    theirs = api.get(f"/v1/patients/{created['id']}", key=other_key)
    missing = api.get("/v1/patients/999999", key=other_key)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["message"].replace(str(created["id"]), "N") == missing.json()[
        "message"
    ].replace("999999", "N")
