"""Staff access in Chromium: sessions that end, roles, two-factor sign-in, the throttle."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from freezegun import freeze_time

from reminders.clock import utcnow
from tests.web.conftest import PASSWORD, Site, screenshot, sign_in

expect = pytest.importorskip("playwright.sync_api").expect

EMAIL = "sam@riverside.example"
ADMIN = "ada@riverside.example"


def replayed(browser: Any, site: Site, cookies: list[dict[str, Any]]) -> Any:
    """A fresh browser context holding only the saved cookies, on the patient list."""
    context = browser.new_context(base_url=site.url)
    context.add_cookies(cookies)
    tab = context.new_page()
    tab.goto("/clinic/patients")
    return context, tab


def test_a_saved_cookie_is_refused_after_sign_out(page: Any, browser: Any, site: Site) -> None:
    site.clinic("Riverside Dermatology", email=EMAIL)
    sign_in(page, EMAIL)
    expect(page.get_by_role("heading", name="Worklist", level=1)).to_be_visible()
    saved = page.context.cookies()
    assert any(cookie["name"] == "reminders_session" for cookie in saved)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    context, tab = replayed(browser, site, saved)
    try:
        expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        context.close()


def test_a_saved_cookie_is_refused_after_30_idle_minutes(
    page: Any, browser: Any, site: Site
) -> None:
    site.clinic("Riverside Dermatology", email=EMAIL)
    sign_in(page, EMAIL)
    expect(page.get_by_role("heading", name="Worklist", level=1)).to_be_visible()
    saved = page.context.cookies()
    start = utcnow()
    # The server's clock moves; the browser's own timers keep the real one.
    with freeze_time(start + timedelta(minutes=29), tick=True, real_asyncio=True) as clock:
        context, tab = replayed(browser, site, saved)
        try:
            expect(tab.get_by_role("heading", name="Patients", level=1)).to_be_visible()
            clock.move_to(start + timedelta(minutes=29 + 31))
            tab.goto("/clinic/patients")
            expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
        finally:
            context.close()


def test_a_staff_user_gets_403_on_the_admin_pages(page: Any, site: Site) -> None:
    clinic = site.clinic("Riverside Dermatology", email=ADMIN, role="admin")
    site.user(clinic, EMAIL)
    sign_in(page, EMAIL)
    expect(page.get_by_role("link", name="Staff")).to_have_count(0)
    for path in ("/clinic/staff", "/clinic/keys", "/clinic/audit"):
        response = page.goto(path)
        assert response is not None and response.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "This page is for the clinic's admins"
        )


def test_an_admin_adds_a_colleague_and_reads_the_trail(page: Any, site: Site) -> None:
    site.clinic("Riverside Dermatology", email=ADMIN, role="admin")
    sign_in(page, ADMIN)
    page.get_by_role("link", name="Staff").click()
    page.get_by_label("Email").fill("kim@riverside.example")
    page.get_by_label("Password", exact=True).fill("another long passphrase")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("status")).to_have_text("kim@riverside.example can now sign in.")
    screenshot(page, "staff")
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("cell", name="staff.add")).to_be_visible()
    screenshot(page, "audit")


def test_two_factor_enrolment_and_sign_in(page: Any, site: Site) -> None:
    site.clinic("Riverside Dermatology", email=EMAIL)
    sign_in(page, EMAIL)
    page.get_by_role("link", name="Account").click()
    expect(page.locator(".qr svg")).to_be_visible()
    screenshot(page, "two-factor")
    secret = page.locator("#totp-secret").inner_text()
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn two-factor sign-in on").click()
    expect(page.get_by_role("status")).to_have_text("Two-factor sign-in is on.")
    page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in(page, EMAIL)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    page.goto("/clinic/patients")
    expect(page).to_have_url(re.compile(r"/clinic/sign-in"))
    page.goto("/clinic/sign-in/code")
    # The code of the next time step: the one used to enrol is spent.
    page.get_by_label("Code").fill(totp.at(utcnow() + timedelta(seconds=30)))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Worklist", level=1)).to_be_visible()


def test_the_sixth_wrong_password_is_refused_with_a_clear_message(page: Any, site: Site) -> None:
    site.clinic("Riverside Dermatology", email=EMAIL)
    start = utcnow()
    with freeze_time(start, tick=True, real_asyncio=True) as clock:
        for n in range(5):
            sign_in(page, EMAIL, password="not the password at all")
            expect(page.get_by_role("alert")).to_have_text(
                "The email or the password is not right."
            )
            clock.move_to(start + timedelta(seconds=20 * (n + 1)))
        sign_in(page, EMAIL, password=PASSWORD)
        expect(page.get_by_role("alert")).to_contain_text("Signing in is locked for")
