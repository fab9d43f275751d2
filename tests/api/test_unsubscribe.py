"""Email one-click unsubscribe (RFC 8058) and its confirmation page."""

from __future__ import annotations

from reminders.tokens import unsubscribe_token
from tests.api.conftest import Api, row_counts

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def email_patient(api: Api) -> tuple[dict, str]:
    created = api.enroll(channel="email", phone=None, email="ana@example.com")
    token = unsubscribe_token(api.patient(created["id"]), api.rt.settings)
    return created, token


def test_opening_the_link_shows_a_button_and_changes_nothing(api: Api) -> None:
    _created, token = email_patient(api)
    before = row_counts(api.rt)
    response = api.client.get(f"/unsubscribe/{token}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'name="List-Unsubscribe" value="One-Click"' in response.text
    assert "Riverside Dermatology" in response.text
    assert row_counts(api.rt) == before


def test_a_one_click_post_stops_email_at_once(api: Api) -> None:
    created, token = email_patient(api)
    response = api.client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert api.patient(created["id"]).email_opted_out
    assert {m["status"] for m in api.messages(created["id"])} == {"suppressed"}
    ledger = api.get(f"/v1/patients/{created['id']}/consent").json()["items"]
    assert (ledger[-1]["channel"], ledger[-1]["action"], ledger[-1]["source"]) == (
        "email",
        "opt_out",
        "link",
    )


def test_a_second_click_records_nothing_more(api: Api) -> None:
    _created, token = email_patient(api)
    api.client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    before = row_counts(api.rt)
    again = api.client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    assert again.status_code == 200
    assert row_counts(api.rt) == before
    assert "You are unsubscribed" in api.client.get(f"/unsubscribe/{token}").text


def test_a_forged_token_is_a_404_page_and_changes_nothing(api: Api) -> None:
    _created, token = email_patient(api)
    before = row_counts(api.rt)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for response in (
        api.client.get(f"/unsubscribe/{forged}"),
        api.client.post(f"/unsubscribe/{forged}", data=ONE_CLICK),
    ):
        assert response.status_code == 404
        assert "not valid" in response.text
    assert row_counts(api.rt) == before


def test_a_post_without_one_click_changes_nothing(api: Api) -> None:
    created, token = email_patient(api)
    response = api.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "Maybe"})
    assert response.status_code == 400
    assert not api.patient(created["id"]).email_opted_out


def test_the_page_speaks_the_patients_language(api: Api) -> None:
    created = api.enroll(channel="email", phone=None, email="eva@example.com", locale="es")
    token = unsubscribe_token(api.patient(created["id"]), api.rt.settings)
    assert "Cancelar la suscripción" in api.client.get(f"/unsubscribe/{token}").text
