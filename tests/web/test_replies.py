"""The inbox of patients' replies: in the browser, and its forms over HTTP."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from reminders.clock import utcnow
from reminders.models import Clinic, InboundMessage, Patient
from tests.helpers import receive
from tests.web.conftest import Site, csrf, screenshot, sign_in, signed_in_client

STAFF = "sam@riverside.example"


def reply(site: Site, patient: Patient, body: str, at: datetime | None = None) -> InboundMessage:
    """A text from the patient's number, through the same two steps as the webhook."""
    receive(site.rt, phone=patient.phone or "", body=body, at=at or utcnow())
    with Session(site.rt.engine) as session:
        kept = session.exec(
            select(InboundMessage).where(InboundMessage.patient_id == patient.id)
        ).all()
        return max(kept, key=lambda r: r.id or 0)


def test_an_unread_reply_is_marked_handled_in_the_inbox_and_found_in_the_timeline(
    page: Any, site: Site
) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = site.patient(clinic, first_name="Ana")
    question = reply(site, patient, "Is it normal that my lips peel?")
    sign_in(page, STAFF)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.locator("#unread-count")).to_have_text("1 unread")
    nav.get_by_role("link", name="Replies").click()

    entry = page.locator(f"#reply-{question.id}")
    expect(entry).to_contain_text("Is it normal that my lips peel?")
    expect(entry).to_contain_text("Unread")
    screenshot(page, "replies-inbox")
    entry.get_by_role("button", name="Mark handled").click()

    expect(page.get_by_role("status").first).to_contain_text("The reply is marked handled.")
    expect(page.locator("#replies")).to_have_count(0)
    expect(nav.locator("#unread-count")).to_have_count(0)
    page.get_by_role("link", name="All", exact=True).click()
    page.locator(f"#reply-{question.id}").get_by_role("link", name="Ana").click()

    in_timeline = page.locator(f"#past > li#reply-{question.id}")
    expect(in_timeline).to_contain_text("Is it normal that my lips peel?")
    expect(in_timeline).to_contain_text(f"Handled by {STAFF}")
    with Session(site.rt.engine) as session:
        stored = session.get(InboundMessage, question.id)
        assert stored is not None
        assert (stored.state, stored.handled_by) == ("handled", STAFF)


def test_a_keyword_reply_shows_in_the_timeline_beside_what_was_sent(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = data.patient(clinic)
    stop = reply(data, patient, "STOP")
    with signed_in_client(data.rt, STAFF) as client:
        page = client.get(f"/clinic/patients/{patient.id}").text
    entry = page[page.index(f'id="reply-{stop.id}"') :]
    assert "Opt-out (STOP)" in entry[:1000] and "Answered automatically" in entry[:1000]
    assert "No texts are sent to this patient" in page


def test_marking_handled_without_the_csrf_token_is_refused_and_changes_nothing(
    data: Site,
) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = data.patient(clinic)
    question = reply(data, patient, "When is my next visit?")
    with signed_in_client(data.rt, STAFF) as client:
        response = client.post(f"/clinic/replies/{question.id}/handled", data={})
    assert response.status_code == 403
    with Session(data.rt.engine) as session:
        assert session.get(InboundMessage, question.id).state == "unread"  # type: ignore[union-attr]


def test_another_clinics_reply_cannot_be_marked_handled(data: Site) -> None:
    ours = data.clinic("Riverside Dermatology", email=STAFF)
    theirs = data.clinic("Lakeside Skin", email="lee@lakeside.example")
    _patient, _course = data.patient(ours, phone="+12125550102")
    patient, _course = data.patient(theirs)
    question = reply(data, patient, "A question for Lakeside")
    with signed_in_client(data.rt, STAFF) as client:
        token = csrf(client, "/clinic/replies")
        inbox = client.get("/clinic/replies?state=all").text
        response = client.post(f"/clinic/replies/{question.id}/handled", data={"csrf_token": token})
    assert "A question for Lakeside" not in inbox
    assert response.status_code == 404
    with Session(data.rt.engine) as session:
        assert session.get(InboundMessage, question.id).state == "unread"  # type: ignore[union-attr]


def test_the_overview_counts_unread_replies_and_those_overdue(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = data.patient(clinic)
    # Four days hold at least two weekdays, so this one waited over a business day.
    reply(data, patient, "An old question", at=utcnow() - timedelta(days=4))
    reply(data, patient, "A new question")
    with signed_in_client(data.rt, STAFF) as client:
        overview = client.get("/clinic").text
        inbox = client.get("/clinic/replies").text
    tile = overview[overview.index('id="tile-replies"') :][:600]
    assert re.search(r'class="number">2</span> unread replies', tile)
    assert "1 overdue" in tile
    assert inbox.count("Waiting more than a business day") == 1


def save_settings(data: Site, help_contact: str) -> tuple[Any, str, tuple[str, str | None]]:
    """Post the settings form (as an admin: the settings are theirs); the answer, the settings
    page after it, and what is stored."""
    clinic = data.clinic("Riverside Dermatology", email=STAFF, role="admin")
    with signed_in_client(data.rt, STAFF) as client:
        form = {
            "csrf_token": csrf(client, "/clinic/settings"),
            "help_contact": help_contact,
            "notify_email": "desk@riverside.example",
        }
        response = client.post("/clinic/settings", data=form)
        page = client.get("/clinic/settings").text
    with Session(data.rt.engine) as session:
        saved = session.get(Clinic, clinic.id)
        assert saved is not None
        return response, page, (saved.help_contact, saved.notify_email)


def test_the_settings_page_saves_the_help_phone_and_the_notification_email(
    data: Site,
) -> None:
    response, page, saved = save_settings(data, "212 555 0177")
    assert response.status_code == 303
    assert 'value="(212) 555-0177"' in page and 'value="desk@riverside.example"' in page
    assert saved == ("(212) 555-0177", "desk@riverside.example")


def test_a_bad_help_phone_is_refused_next_to_its_field_and_nothing_is_saved(
    data: Site,
) -> None:
    response, _page, saved = save_settings(data, "555")
    assert response.status_code == 422
    assert 'id="f-help_contact-error"' in response.text
    assert saved == ("(212) 555-0199", None)


def test_enrolling_a_number_that_opted_out_says_so_and_plans_no_text(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    first, course = data.patient(clinic)
    reply(data, first, "please stop")
    with signed_in_client(data.rt, STAFF) as client:
        token = csrf(client, f"/clinic/patients/{first.id}")
        client.post(
            f"/clinic/courses/{course.id}/stop", data={"csrf_token": token, "confirm": "yes"}
        )
        form = {
            "csrf_token": token,
            # Another name: another patient at the same number (the same name would be Ana's
            # own record, with a new course).
            "first_name": "Bea",
            "phone": first.phone,
            "channel": "sms",
            "timezone": "America/Chicago",
            "start_date": utcnow().date().isoformat(),
            "weeks": "20",
            "locale": "en",
        }
        response = client.post("/clinic/patients/new", data=form)
        page = client.get(response.headers["location"]).text
    assert response.status_code == 303
    assert "No texts will be sent: this contact opted out earlier." in page
    assert "No texts are sent to this patient" in page
    assert "this contact had opted out earlier, in another enrolment" in page
    new_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert data.messages(new_id) == []


def test_the_settings_page_is_for_admins(data: Site) -> None:
    data.clinic("Riverside Dermatology", email=STAFF)  # a staff user, not an admin
    with signed_in_client(data.rt, STAFF) as client:
        assert client.get("/clinic/settings").status_code == 403
