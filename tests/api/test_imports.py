"""POST /v1/imports: a CSV file, all-or-nothing by default, with a per-row report."""

from __future__ import annotations

from tests.api.conftest import Api, row_counts

HEADER = "first_name,phone,email,channel,timezone,start_date\n"
GOOD = HEADER + (
    "Ana,+12125550101,,sms,America/New_York,2026-03-16\n"
    "Luis,+12125550102,luis@example.com,both,America/Chicago,2026-03-20\n"
)
ONE_BAD = GOOD + "Eva,+1555,,sms,Mars/Olympus,2026-03-16\n"


def upload(api: Api, data: bytes, **params: str):
    return api.post(
        "/v1/imports", files={"file": ("patients.csv", data, "text/csv")}, params=params
    )


def test_an_uploaded_file_enrolls_every_row(api: Api) -> None:
    response = upload(api, GOOD.encode())
    assert response.status_code == 201, response.text
    report = response.json()
    assert [entry["row"] for entry in report["enrolled"]] == [2, 3]
    assert report["errors"] == []
    assert api.get("/v1/patients").json()["total"] == 2


def test_a_text_csv_body_enrolls_every_row(api: Api) -> None:
    response = api.post(
        "/v1/imports", content=GOOD.encode(), headers={"Content-Type": "text/csv; charset=utf-8"}
    )
    assert response.status_code == 201
    assert len(response.json()["enrolled"]) == 2


def test_one_invalid_row_refuses_the_file_naming_row_and_fields(api: Api) -> None:
    before = row_counts(api.rt)
    response = upload(api, ONE_BAD.encode())
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {(item["row"], item["field"]) for item in detail} == {(4, "phone"), (4, "timezone")}
    assert row_counts(api.rt) == before


def test_a_partial_import_enrolls_the_valid_rows_and_reports_the_rest(api: Api) -> None:
    response = upload(api, ONE_BAD.encode(), partial="true")
    assert response.status_code == 201
    report = response.json()
    assert [entry["row"] for entry in report["enrolled"]] == [2, 3]
    assert {error["field"] for error in report["errors"]} == {"phone", "timezone"}


def test_an_sms_only_file_without_an_email_column_imports(api: Api) -> None:
    sms_only = "first_name,phone,channel,timezone,start_date\nAna,+12125550101,sms,UTC,2026-03-16\n"
    response = upload(api, sms_only.encode())
    assert response.status_code == 201, response.text
    assert len(response.json()["enrolled"]) == 1


def test_a_row_that_needs_a_missing_column_is_refused_naming_its_patient(api: Api) -> None:
    data = "first_name,last_name,phone,channel,timezone,start_date\n"
    data += "Luis,Ortiz,+12125550102,email,UTC,2026-03-16\n"
    response = upload(api, data.encode())
    assert response.status_code == 422
    [item] = response.json()["detail"]
    assert (item["row"], item["field"], item["patient"]) == (2, "email", "Luis Ortiz")
    assert item["reason"] == "required for channel email"


def test_a_row_with_a_known_chart_number_adds_a_course_to_that_patient(api: Api) -> None:
    enrolled = api.post(
        "/v1/patients",
        json={
            "first_name": "Ana",
            "last_name": "Lopez",
            "external_id": "CH-0042",
            "phone": "+12125550101",
            "channel": "sms",
            "timezone": "America/New_York",
            "start_date": "2026-03-16",
        },
    ).json()
    data = "first_name,last_name,external_id,phone,channel,timezone,start_date\n"
    data += "Ana,López,CH-0042,+12125550109,sms,America/Chicago,2026-03-20\n"
    # While the first course runs, the row is already enrolled: nothing is written.
    report = upload(api, data.encode()).json()
    assert report["enrolled"] == []
    assert report["already_enrolled"] == [
        {"row": 2, "patient_id": enrolled["id"], "course_id": enrolled["course_id"]}
    ]
    api.post(f"/v1/courses/{enrolled['course_id']}/stop")
    report = upload(api, data.encode()).json()
    [row] = report["enrolled"]
    assert row["patient_id"] == enrolled["id"] and row["course_id"] != enrolled["course_id"]
    patient = api.get(f"/v1/patients/{enrolled['id']}").json()
    assert (patient["course_id"], patient["phone"]) == (row["course_id"], "+12125550109")
    assert api.get("/v1/patients").json()["total"] == 1


def test_an_oversize_file_is_413_and_writes_nothing(api: Api) -> None:
    before = row_counts(api.rt)
    big = (GOOD + "#" * (5 * 1024 * 1024)).encode()
    streamed = (big[i : i + 1024 * 1024] for i in range(0, len(big), 1024 * 1024))
    far_too_big = b"#" * (25 * 1024 * 1024)
    for response in (
        upload(api, big),
        api.post("/v1/imports", content=big, headers={"Content-Type": "text/csv"}),
        api.post("/v1/imports", content=streamed, headers={"Content-Type": "text/csv"}),
        api.post("/v1/imports", content=far_too_big, headers={"Content-Type": "text/csv"}),
    ):
        assert response.status_code == 413
        assert response.json()["detail"][0]["field"] in ("file", "body")
    assert row_counts(api.rt) == before


def test_a_file_that_is_not_utf8_text_is_refused_by_field(api: Api) -> None:
    before = row_counts(api.rt)
    response = upload(api, b"\xff\xfe\x00b\x00i\x00n")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "file"
    assert row_counts(api.rt) == before


def test_an_unknown_column_is_refused_by_its_name(api: Api) -> None:
    response = upload(api, b"first_name,shoe_size\nAna,9\n")
    assert response.status_code == 422
    assert response.json()["detail"][0] == {"field": "shoe_size", "reason": "unknown column"}


def test_a_row_of_the_wrong_width_is_reported_by_row(api: Api) -> None:
    response = upload(api, (GOOD + "Eva,+12125550109\n").encode())
    assert response.status_code == 422
    assert response.json()["detail"][0]["row"] == 4


def test_another_content_type_is_415_naming_it(api: Api) -> None:
    before = row_counts(api.rt)
    response = api.post("/v1/imports", json={"rows": []})
    assert response.status_code == 415
    assert response.json()["detail"][0]["field"] == "Content-Type"
    assert row_counts(api.rt) == before


def test_a_form_without_the_file_field_is_refused_naming_it(api: Api) -> None:
    response = api.post("/v1/imports", files={"upload": ("p.csv", GOOD.encode(), "text/csv")})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "file"
