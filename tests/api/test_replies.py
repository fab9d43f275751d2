"""The clinic's inbox through the API: patients' texts, read and marked handled."""

from __future__ import annotations

from tests.api.conftest import PHONE, Api
from tests.conftest import NOW

REPLIES = "/v1/replies"


def replies(api: Api, key: str | None = None, **params: str) -> list[dict]:
    response = api.get(REPLIES, key, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_question_is_listed_unread_with_its_patient_course_and_words(api: Api) -> None:
    created = api.enroll()
    api.text("Is peeling skin normal?", sid="SM_Q1")
    [reply] = replies(api, state="unread")
    assert reply == {
        "id": reply["id"],
        "patient_id": created["id"],
        "course_id": created["course_id"],
        "received_at": NOW.isoformat().replace("+00:00", "Z"),
        "body": "Is peeling skin normal?",
        "kind": "message",
        "state": "unread",
        "handled_at": None,
        "handled_by": None,
    }


def test_keywords_are_listed_as_answered_and_never_unread(api: Api) -> None:
    api.enroll()
    for word in ("HELP", "Stop texting me", "START"):
        api.text(word)
    listed = replies(api, state="all")
    assert [(r["kind"], r["state"], r["handled_by"]) for r in listed] == [
        ("opt_in", "handled", None),
        ("opt_out", "handled", None),
        ("help", "handled", None),
    ]
    assert replies(api, state="unread") == []


def test_the_list_is_newest_first_and_filters_by_state(api: Api) -> None:
    api.enroll()
    api.text("first question", sid="SM_1")
    api.text("second question", sid="SM_2")
    first, second = reversed(replies(api))
    api.post(f"{REPLIES}/{first['id']}/handled")
    assert [r["body"] for r in replies(api, state="unread")] == ["second question"]
    assert [r["body"] for r in replies(api, state="handled")] == ["first question"]
    assert [r["id"] for r in replies(api)] == [second["id"], first["id"]]
    page = api.get(REPLIES, params={"limit": 1}).json()
    assert (page["total"], len(page["items"])) == (2, 1)


def test_marking_a_reply_handled_records_when_and_by_the_api_key(api: Api) -> None:
    api.enroll()
    api.text("Can I drink alcohol?")
    [reply] = replies(api)
    response = api.post(f"{REPLIES}/{reply['id']}/handled")
    assert response.status_code == 200
    handled = response.json()
    assert (handled["state"], handled["handled_by"]) == ("handled", "api")
    assert handled["handled_at"] == NOW.isoformat().replace("+00:00", "Z")
    again = api.post(f"{REPLIES}/{reply['id']}/handled")
    assert again.json() == handled


def test_another_clinics_reply_is_not_found_and_not_listed(api: Api) -> None:
    api.enroll()
    api.text("A question for Riverside")
    [reply] = replies(api)
    _clinic, other_key = api.add_clinic("Lakeside Skin")
    assert replies(api, other_key) == []
    response = api.post(f"{REPLIES}/{reply['id']}/handled", other_key)
    assert response.status_code == 404
    assert replies(api, state="unread")[0]["id"] == reply["id"]


def test_a_number_enrolled_at_two_clinics_reaches_both_inboxes(api: Api) -> None:
    api.enroll()
    _clinic, other_key = api.add_clinic("Lakeside Skin")
    api.enroll(key=other_key)
    api.text("Who is this?", phone=PHONE)
    assert [r["body"] for r in replies(api)] == ["Who is this?"]
    assert [r["body"] for r in replies(api, other_key)] == ["Who is this?"]


def test_an_unknown_state_is_refused_naming_it(api: Api) -> None:
    response = api.get(REPLIES, params={"state": "archived"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "state"


def test_the_clinic_sets_and_clears_the_address_told_of_replies(api: Api) -> None:
    response = api.patch("/v1/clinic", json={"notify_email": "Front-Desk@Riverside.example"})
    assert response.status_code == 200
    assert response.json()["notify_email"] == "Front-Desk@riverside.example"
    assert api.get("/v1/clinic").json()["notify_email"] == "Front-Desk@riverside.example"
    cleared = api.patch("/v1/clinic", json={"notify_email": None})
    assert cleared.json()["notify_email"] is None


def test_the_help_phone_is_checked_and_kept_in_national_format(api: Api) -> None:
    response = api.patch("/v1/clinic", json={"help_contact": "+1 212 555 0188"})
    assert response.json()["help_contact"] == "(212) 555-0188"
    refused = api.patch("/v1/clinic", json={"help_contact": "call us"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "help_contact"
    assert api.get("/v1/clinic").json()["help_contact"] == "(212) 555-0188"


def test_a_bad_notification_address_is_refused_and_nothing_changes(api: Api) -> None:
    refused = api.patch("/v1/clinic", json={"notify_email": "front desk"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "notify_email"
    assert api.get("/v1/clinic").json()["notify_email"] is None
