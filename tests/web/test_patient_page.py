"""A patient's page in the browser: timeline, course actions, and what another clinic sees."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from reminders.channels.twilio_status import read_status_callback
from reminders.clock import utcnow
from reminders.db import session_scope
from reminders.models import Channel, Course, CourseStatus, MessageStatus, Patient
from reminders.services import opt_out, record_delivery
from tests.web.conftest import Site, screenshot, sign_in, unlabelled_fields

expect = pytest.importorskip("playwright.sync_api").expect

STAFF = "sam@riverside.example"


def deliver_first_two(site: Site, patient: Patient) -> None:
    """The first planned message arrived; the second was refused by the carrier."""
    first, second = sorted(site.messages(patient.id, "pending"), key=lambda m: m.due_at)[:2]
    with session_scope(site.rt.engine) as session:
        for row, status, code in ((first, "delivered", None), (second, "undelivered", 30003)):
            form = {"MessageStatus": status, "MessageSid": f"SM{row.id:032d}"}
            if code:
                form["ErrorCode"] = str(code)
            record_delivery(
                session, outbox_id=row.id, report=read_status_callback(form), now=utcnow()
            )


def test_the_timeline_shows_what_was_delivered_what_failed_and_what_is_next(
    page: Any, site: Site
) -> None:
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = site.patient(clinic, first_name="Ana", ipledge="yes")
    deliver_first_two(site, patient)
    sign_in(page, STAFF)
    page.get_by_role("link", name="Patients", exact=True).click()
    row = page.locator("table.patients tbody tr").first
    expect(row).to_contain_text("Not delivered")
    row.get_by_role("link", name="Ana").click()

    past = page.locator("#past > li")
    expect(past).to_have_count(2)
    expect(past.nth(0)).to_contain_text("Not delivered")
    expect(past.nth(1)).to_contain_text("Delivered")
    expect(past.nth(1)).to_contain_text("Reply STOP to opt out")
    expect(page.locator("#upcoming > li").first).to_contain_text("Upcoming")
    expect(page.get_by_role("table")).to_contain_text("By staff")
    expect(page.get_by_role("heading", name="Pregnancy test")).to_be_visible()
    assert unlabelled_fields(page) == []
    screenshot(page, "patient-timeline")


def test_pausing_a_course_removes_its_upcoming_messages_and_resuming_brings_them_back(
    page: Any, site: Site
) -> None:
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    patient, course = site.patient(clinic)
    sign_in(page, STAFF)
    page.goto(f"/clinic/patients/{patient.id}")
    expect(page.locator("#upcoming > li").first).to_be_visible()

    page.get_by_role("button", name="Pause the course").click()
    expect(page.get_by_role("status")).to_contain_text("The course is paused")
    expect(page.locator("#no-upcoming")).to_have_text("No upcoming messages: the course is paused.")
    expect(page.locator("#upcoming")).to_have_count(0)
    assert site.messages(patient.id, MessageStatus.pending) == []

    page.get_by_role("button", name="Resume the course").click()
    expect(page.locator("#upcoming > li").first).to_be_visible()
    assert site.messages(patient.id, MessageStatus.pending) != []
    with session_scope(site.rt.engine) as session:
        assert session.get(Course, course.id).status == CourseStatus.active  # type: ignore[union-attr]


def test_a_refused_change_says_why_next_to_the_field_and_changes_nothing(
    page: Any, site: Site
) -> None:
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    patient, course = site.patient(clinic)
    sign_in(page, STAFF)
    page.goto(f"/clinic/patients/{patient.id}")
    page.get_by_label("Planned length in weeks").fill("500")
    page.get_by_role("button", name="Save the change").click()
    expect(page.locator("#f-weeks-error")).to_contain_text("500 is outside 1-104 weeks")
    expect(page.get_by_label("Planned length in weeks")).to_have_value("500")
    with session_scope(site.rt.engine) as session:
        assert session.get(Course, course.id).weeks == 20  # type: ignore[union-attr]

    page.get_by_role("button", name="Stop the course").click()  # the box is not ticked
    page.get_by_label("Stop for good").check()
    page.get_by_role("button", name="Stop the course").click()
    expect(page.get_by_role("status")).to_contain_text("The course is stopped")
    expect(page.get_by_text("This course was stopped.")).to_be_visible()


def test_another_clinic_gets_a_404_for_the_patient_and_does_not_list_them(
    page: Any, site: Site
) -> None:
    first = site.clinic("Riverside Dermatology", email=STAFF)
    site.clinic("Hillside Skin Care", email="kim@hillside.example")
    patient, _course = site.patient(first, first_name="Ana")
    sign_in(page, "kim@hillside.example")
    expect(page.get_by_role("banner")).to_contain_text("Hillside Skin Care")

    response = page.goto(f"/clinic/patients/{patient.id}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Ana")

    page.goto("/clinic/patients?q=Ana")
    expect(page.get_by_text("No patient matches.")).to_be_visible()
    page.goto("/clinic/patients")
    expect(page.get_by_text("No patients yet.")).to_be_visible()


def test_the_overview_counts_courses_and_lists_failures_and_opt_outs(page: Any, site: Site) -> None:
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    ana, _ = site.patient(clinic, first_name="Ana")
    ben, _ = site.patient(clinic, first_name="Ben", phone="+13125550199")
    deliver_first_two(site, ana)
    with session_scope(site.rt.engine) as session:
        found = session.get(Patient, ben.id)
        assert found is not None
        opt_out(session, patient=found, channel=Channel.sms, source="reply", now=utcnow())
    sign_in(page, STAFF)

    tiles = page.get_by_role("list", name="This clinic at a glance")
    expect(tiles).to_contain_text("2 active courses")
    expect(tiles).to_contain_text("1 failed in the last 30 days")
    expect(tiles).to_contain_text("1 patient opted out")
    failures = page.locator("section", has=page.get_by_role("heading", name="Failures"))
    expect(failures.get_by_role("row", name="Ana")).to_contain_text("unreachable handset")
    opt_outs = page.locator("section", has=page.get_by_role("heading", name="Recent opt-outs"))
    expect(opt_outs.get_by_role("row", name="Ben")).to_contain_text("Patient's text reply")
    screenshot(page, "overview")


def test_the_patient_page_fits_a_phone_screen(browser: Any, site: Site) -> None:
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = site.patient(clinic, first_name="Ana", ipledge="yes")
    deliver_first_two(site, patient)
    context = browser.new_context(
        base_url=site.url,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        phone = context.new_page()
        sign_in(phone, STAFF)
        phone.goto(f"/clinic/patients/{patient.id}")
        expect(phone.get_by_role("heading", name="Ana", level=1)).to_be_visible()
        overflow = phone.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
        button = phone.get_by_role("button", name="Pause the course").bounding_box()
        assert button is not None and button["height"] >= 44  # a comfortable touch target
        screenshot(phone, "patient-phone", full_page=False)
        phone.get_by_role("heading", name="Course actions").scroll_into_view_if_needed()
        screenshot(phone, "patient-phone-actions", full_page=False)
    finally:
        context.close()


def test_a_course_near_its_planned_end_asks_staff_to_confirm_the_last_dose(
    page: Any, site: Site
) -> None:
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    start = utcnow().date() - timedelta(weeks=20) + timedelta(days=3)  # ends in 3 days
    patient, _course = site.patient(clinic, first_name="Ana", start_date=start.isoformat())
    site.patient(clinic, first_name="Ben", phone="+12125550102")  # just started
    sign_in(page, STAFF)
    page.get_by_role("link", name="Patients", exact=True).click()
    rows = page.locator("table.patients tbody tr")
    expect(rows.filter(has_text="Ana")).to_contain_text("Confirm the last dose or extend")
    expect(rows.filter(has_text="Ben")).not_to_contain_text("Confirm the last dose")
    page.goto(f"/clinic/patients/{patient.id}")
    expect(page.locator(".badges")).to_contain_text("Confirm the last dose or extend")
    expect(page.locator("#waiting")).to_contain_text("planned once the last dose is recorded")
