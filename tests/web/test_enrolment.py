"""Enrolling one patient with the form, and many with a spreadsheet, in the browser."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from reminders.clock import utcnow
from reminders.models import Patient
from tests.web.conftest import Site, screenshot, sign_in, unlabelled_fields

expect = pytest.importorskip("playwright.sync_api").expect

STAFF = "sam@riverside.example"


def test_staff_enroll_a_patient_after_fixing_the_fields_and_see_the_timeline(
    page: Any, site: Site
) -> None:
    site.clinic("Riverside Dermatology", email=STAFF)
    sign_in(page, STAFF)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Enroll").click()
    assert unlabelled_fields(page) == []
    page.get_by_label("First name").fill("Maria")
    page.get_by_label("Text message (SMS)").check()
    page.get_by_label("Mobile phone").fill("555")
    page.get_by_label("Time zone").fill("America/Chicago")
    far = (utcnow() + timedelta(days=400)).date().isoformat()
    page.get_by_label("Course start date").fill(far)
    page.get_by_role("button", name="Enroll").click()

    expect(page.get_by_role("alert")).to_contain_text("Please correct these 2 fields")
    expect(page.locator("#f-phone-error")).to_contain_text("'555' is not a")
    expect(page.locator("#f-start_date-error")).to_contain_text("more than a year from today")
    expect(page.get_by_label("Mobile phone")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("First name")).to_have_value("Maria")
    expect(page.get_by_label("Time zone")).to_have_value("America/Chicago")
    screenshot(page, "enroll-with-errors")
    assert site.count(Patient) == 0

    page.get_by_role("link", name="Mobile phone: '555'").click()
    expect(page.get_by_label("Mobile phone")).to_be_focused()
    page.get_by_label("Mobile phone").fill("(312) 555-0142")
    page.get_by_label("Course start date").fill(utcnow().date().isoformat())
    page.get_by_role("button", name="Enroll").click()

    expect(page.get_by_role("heading", name="Maria", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Maria is enrolled.")
    upcoming = page.locator("#upcoming > li")
    expect(upcoming.first).to_contain_text("Riverside: ")  # the clinic's SMS name
    expect(upcoming.first).to_contain_text("Reply STOP to opt out")
    expect(upcoming.first.locator("time")).to_contain_text(" C")  # CST or CDT: Chicago time
    expect(page.get_by_role("table")).to_contain_text("Opted in")
    assert unlabelled_fields(page) == []


def csv_file(rows: list[str]) -> dict[str, Any]:
    text = "first_name,phone,email,channel,timezone,start_date\n" + "\n".join(rows) + "\n"
    return {"name": "patients.csv", "mimeType": "text/csv", "buffer": text.encode()}


def test_a_spreadsheet_with_a_bad_row_shows_its_reason_and_saves_nothing_until_asked(
    page: Any, site: Site
) -> None:
    site.clinic("Riverside Dermatology", email=STAFF)
    today = utcnow().date().isoformat()
    upload = csv_file(
        [
            f"Lucia,+13125550111,,sms,America/Chicago,{today}",
            f"Omar,555,,sms,America/Chicago,{today}",
            f"Grace,,grace@example.org,email,America/New_York,{today}",
        ]
    )
    sign_in(page, STAFF)
    page.get_by_role("link", name="Import").click()
    assert unlabelled_fields(page) == []
    page.get_by_label("CSV file").set_input_files(upload)
    page.get_by_role("button", name="Upload and enroll").click()

    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved: 1 problem")
    problems = page.get_by_role("table", name="Rows with problems").locator("tbody tr")
    expect(problems).to_have_count(1)
    expect(problems.first).to_contain_text("3")
    expect(problems.first).to_contain_text("phone")
    expect(problems.first).to_contain_text("'555' is not a")
    screenshot(page, "import-report")
    assert site.count(Patient) == 0

    page.get_by_label("CSV file").set_input_files(upload)
    page.get_by_label("Enroll the valid rows even if some rows have problems").check()
    page.get_by_role("button", name="Upload and enroll").click()
    expect(page.locator("#report").get_by_role("status")).to_contain_text("2 patients enrolled")
    assert site.count(Patient) == 2

    page.get_by_role("link", name="Patients", exact=True).click()
    rows = page.locator("table.patients tbody tr")
    expect(rows).to_have_count(2)
    screenshot(page, "patient-list")
    page.get_by_label("Search by name, phone, email or chart number").fill("555-0111")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Lucia")
    page.get_by_label("Search by name, phone, email or chart number").fill("grace")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Grace")
    page.get_by_label("Search by name, phone, email or chart number").fill("")
    page.get_by_label("Show").select_option("paused")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No patient matches.")).to_be_visible()
