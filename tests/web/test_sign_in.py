"""Signing in and out in the browser."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import Site, sign_in, unlabelled_fields

expect = pytest.importorskip("playwright.sync_api").expect


def test_staff_sign_in_with_the_keyboard_and_land_on_the_overview(page: Any, site: Site) -> None:
    site.clinic("Riverside Dermatology", email="sam@riverside.example")
    page.goto("/clinic")
    expect(page).to_have_url(re.compile(r"/clinic/sign-in\?next=/clinic$"))
    assert unlabelled_fields(page) == []
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Email").focus()
    page.keyboard.type("sam@riverside.example")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("correct horse battery staple")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Worklist", level=1)).to_be_visible()
    expect(page.get_by_role("banner")).to_contain_text("Riverside Dermatology")
    expect(page.get_by_role("link", name="Worklist")).to_have_attribute("aria-current", "page")


def test_a_wrong_password_shows_an_error_and_signs_nobody_in(page: Any, site: Site) -> None:
    site.clinic("Riverside Dermatology", email="sam@riverside.example")
    sign_in(page, "sam@riverside.example", password="not the password at all")
    expect(page.get_by_role("alert")).to_have_text("The email or the password is not right.")
    expect(page.get_by_label("Email")).to_have_value("sam@riverside.example")
    expect(page.get_by_label("Password")).to_have_value("")
    page.goto("/clinic/patients")
    expect(page).to_have_url(re.compile(r"/clinic/sign-in"))


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(page: Any, site: Site) -> None:
    site.clinic("Riverside Dermatology", email="sam@riverside.example")
    sign_in(page, "nobody@riverside.example")
    expect(page.get_by_role("alert")).to_have_text("The email or the password is not right.")


def test_signing_out_ends_the_session(page: Any, site: Site) -> None:
    site.clinic("Riverside Dermatology", email="sam@riverside.example")
    sign_in(page, "sam@riverside.example")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto("/clinic/patients")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
