"""The worklist is the clinic's first page: what needs a person, oldest first, with counts
in the navigation. In Chromium."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from reminders.clock import utcnow
from tests.web.conftest import Site, screenshot, sign_in
from tests.web.test_replies import reply

STAFF = "sam@riverside.example"


def test_the_worklist_shows_an_unread_reply_and_a_course_to_confirm(page: Any, site: Site) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    ana, _ = site.patient(clinic, first_name="Ana")
    question = reply(site, ana, "Is it normal that my lips peel?", at=utcnow() - timedelta(hours=5))
    # Three days before the planned end of a 20-week course, and no last dose recorded.
    start = utcnow().date() - timedelta(weeks=20) + timedelta(days=3)
    ben, ben_course = site.patient(
        clinic, first_name="Ben", phone="+13125550199", start_date=start.isoformat()
    )
    sign_in(page, STAFF)

    expect(page.get_by_role("heading", name="Worklist", level=1)).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.locator("#worklist-count")).to_have_text("2 to do")
    table = page.locator("#worklist table")
    expect(table.locator("tbody tr")).to_have_count(2)
    # Oldest first: the reply came in five hours ago, the course entered its last week days ago.
    first, second = table.locator("tbody tr").nth(0), table.locator("tbody tr").nth(1)
    expect(first).to_contain_text("Ben")
    expect(first).to_contain_text("Course to confirm")
    expect(first.get_by_role("link")).to_contain_text("confirm the last dose or extend")
    expect(second).to_contain_text("Ana")
    expect(second).to_contain_text("Unread reply")
    expect(page.locator("#worklist-counts")).to_contain_text("1 unread reply")
    screenshot(page, "worklist")

    second.get_by_role("link", name="unread reply").click()
    expect(page).to_have_url(f"{site.url}/clinic/patients/{ana.id}#reply-{question.id}")
    expect(page.locator(f"#past > li#reply-{question.id}")).to_contain_text("lips peel")
    assert ben_course.patient_id == ben.id


def test_an_empty_worklist_says_so(page: Any, site: Site) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    site.clinic("Riverside Dermatology", email=STAFF)
    sign_in(page, STAFF)
    expect(page.locator("#worklist-empty")).to_have_text("Nothing waits for staff.")
    expect(page.get_by_role("navigation", name="Main").locator("#worklist-count")).to_have_count(0)
