"""The pages staff run a day on: the address opens them, a patient's details are corrected in
the browser, every page fits a phone, and axe-core finds nothing serious on any of them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from reminders.clock import utcnow
from reminders.models import Channel, Patient
from reminders.services.reachability import mark_unreachable
from tests.web.conftest import Site, screenshot, sign_in

expect = pytest.importorskip("playwright.sync_api").expect

STAFF = "sam@riverside.example"
PHONE_SCREEN = {"width": 390, "height": 844}


def test_the_web_address_lands_on_the_sign_in_page(page: Any, site: Site) -> None:
    site.clinic("Riverside Dermatology", email=STAFF)
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, STAFF)
    page.goto("/")
    expect(page.get_by_role("heading", name="Worklist", level=1)).to_be_visible()


def test_staff_correct_a_patients_phone_on_a_phone_screen(browser: Any, site: Site) -> None:
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = site.patient(clinic, first_name="Ana", last_name="Lopez")
    pending = {message.id for message in site.messages(patient.id, "pending")}
    context = browser.new_context(base_url=site.url, viewport=PHONE_SCREEN, is_mobile=True)
    try:
        tab = context.new_page()
        sign_in(tab, STAFF)
        tab.goto(f"/clinic/patients/{patient.id}")
        tab.get_by_role("link", name="Edit details").click()
        tab.get_by_label("Mobile phone").fill("312.555.0177")
        tab.get_by_role("button", name="Save the details").click()
        expect(tab.get_by_role("status")).to_contain_text("The details are saved")
        expect(tab.locator(".details")).to_contain_text("+1 312-555-0177")
        screenshot(tab, "patient-edited-phone", full_page=False)
    finally:
        context.close()
    with Session(site.rt.engine) as session:
        stored = session.get(Patient, patient.id)
        assert stored is not None and stored.phone == "+13125550177"
    # What was still to come is planned again for the new number, nothing is lost.
    assert {message.id for message in site.messages(patient.id, "pending")} == pending


def test_changing_an_unreachable_phone_lifts_the_hold(page: Any, site: Site) -> None:
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = site.patient(clinic, first_name="Ana", last_name="Lopez")
    with Session(site.rt.engine) as session:
        stored = session.get(Patient, patient.id)
        assert stored is not None
        held = mark_unreachable(
            session, patient=stored, channel=Channel.sms, reason="21211 invalid", now=utcnow()
        )
        session.commit()
    assert held and not site.messages(patient.id, "pending")
    sign_in(page, STAFF)
    page.goto(f"/clinic/patients/{patient.id}")
    expect(page.locator("#sms-unreachable")).to_contain_text("Texts to this patient are held")
    expect(page.locator("#contact-state")).to_contain_text("unreachable 21211 invalid")
    page.get_by_role("link", name="Edit details").click()
    page.get_by_label("Mobile phone").fill("(312) 555-0177")
    page.get_by_role("button", name="Save the details").click()
    expect(page.get_by_role("status")).to_contain_text("The details are saved")
    page.goto(f"/clinic/patients/{patient.id}")
    expect(page.locator("#sms-unreachable")).to_have_count(0)
    expect(page.locator("#contact-state")).not_to_contain_text("unreachable")
    assert len(site.messages(patient.id, "pending")) == held
    assert not site.messages(patient.id, "held")


def serious_violations(tab: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(tab)
    assert results.response["testEngine"]["name"] == "axe-core"
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']}"
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def test_no_page_has_a_serious_accessibility_violation_or_scrolls_sideways_on_a_phone(
    browser: Any, site: Site
) -> None:
    clinic = site.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = site.patient(clinic, first_name="Ana", external_id="CH-7")
    # axe-core is injected as a script, which the pages' own policy forbids.
    context = browser.new_context(base_url=site.url, viewport=PHONE_SCREEN, bypass_csp=True)
    found: dict[str, list[str]] = {}
    try:
        tab = context.new_page()
        pages = {"sign-in": "/clinic/sign-in"}
        for name, path in pages.items():
            tab.goto(path)
            found[name] = serious_violations(tab)
        sign_in(tab, STAFF)
        expect(tab.get_by_role("heading", name="Worklist", level=1)).to_be_visible()
        pages = {
            "worklist": "/clinic",
            "patient list": "/clinic/patients",
            "patient page": f"/clinic/patients/{patient.id}",
            "enrol": "/clinic/patients/new",
            "import": "/clinic/import",
            "edit": f"/clinic/patients/{patient.id}/edit",
        }
        for name, path in pages.items():
            tab.goto(path)
            found[name] = serious_violations(tab)
            overflow = tab.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                found[name].append(f"scrolls sideways by {overflow}px at 390px wide")
    finally:
        context.close()
    assert {name: problems for name, problems in found.items() if problems} == {}


def test_the_import_page_offers_a_template_that_imports_as_it_is(data: Site) -> None:
    from tests.web.conftest import signed_in_client

    data.clinic("Riverside Dermatology", email=STAFF)
    with signed_in_client(data.rt, STAFF) as client:
        assert 'href="/clinic/import/template.csv"' in client.get("/clinic/import").text
        template = client.get("/clinic/import/template.csv")
    assert template.headers["content-type"].startswith("text/csv")
    header = template.text.splitlines()[0].split(",")
    from reminders.validation import ENROLL_FIELDS

    assert sorted(header) == sorted(ENROLL_FIELDS)


def test_staff_cannot_switch_texts_back_on_for_a_patient_who_opted_out(data: Site) -> None:
    from tests.web.conftest import csrf, signed_in_client

    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    patient, _course = data.patient(
        clinic, channel="email", email="ana@example.org", phone="+13125550111"
    )
    with Session(data.rt.engine) as session:
        stored = session.get(Patient, patient.id)
        assert stored is not None
        stored.sms_opted_out = True
        session.add(stored)
        session.commit()
    with signed_in_client(data.rt, STAFF) as client:
        path = f"/clinic/patients/{patient.id}/edit"
        token = csrf(client, path)
        form = {
            "csrf_token": token,
            "first_name": "Ana",
            "phone": "+13125550111",
            "email": "ana@example.org",
            "channel": "both",
            "timezone": "America/Chicago",
            "locale": "en",
        }
        response = client.post(path, data=form)
    assert response.status_code == 422
    assert "only they can opt back in" in response.text
    with Session(data.rt.engine) as session:
        assert session.get(Patient, patient.id).channel == "email"  # type: ignore[union-attr]
