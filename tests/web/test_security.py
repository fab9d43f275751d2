"""HTTP-level checks of the clinic pages: the session cookie, CSRF, sign-in, clinic scoping."""

from __future__ import annotations

from sqlmodel import Session

from reminders.app import create_app
from reminders.models import Course, CourseStatus
from reminders.runtime import Runtime
from tests.web.conftest import PASSWORD, Site, TestClient, csrf, signed_in_client


def course_status(rt: Runtime, course_id: int) -> str:
    with Session(rt.engine) as session:
        course = session.get(Course, course_id)
        assert course is not None
        return course.status


def test_a_form_posted_without_the_csrf_token_is_refused_and_changes_nothing(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email="sam@riverside.example")
    _patient, course = data.patient(clinic)
    client = signed_in_client(data.rt, "sam@riverside.example")
    with client:
        refused = client.post(f"/clinic/courses/{course.id}/pause", data={})
        forged = client.post(f"/clinic/courses/{course.id}/pause", data={"csrf_token": "forged"})
    assert (refused.status_code, forged.status_code) == (403, 403)
    assert "This form has expired" in refused.text
    assert course_status(data.rt, course.id) == CourseStatus.active


def test_the_same_form_with_the_session_token_is_accepted(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email="sam@riverside.example")
    patient, course = data.patient(clinic)
    client = signed_in_client(data.rt, "sam@riverside.example")
    with client:
        token = csrf(client, f"/clinic/patients/{patient.id}")
        response = client.post(f"/clinic/courses/{course.id}/pause", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == f"/clinic/patients/{patient.id}"
    assert course_status(data.rt, course.id) == CourseStatus.paused


def test_sign_in_without_the_csrf_token_is_refused(data: Site) -> None:
    data.clinic("Riverside Dermatology", email="sam@riverside.example")
    with TestClient(create_app(data.rt), follow_redirects=False) as client:
        form = {"email": "sam@riverside.example", "password": PASSWORD}
        response = client.post("/clinic/sign-in", data=form)
        after = client.get("/clinic/patients")
    assert response.status_code == 403
    assert after.status_code == 303  # still not signed in


def test_the_session_cookie_is_httponly_and_samesite_lax_but_not_secure_over_http(
    data: Site,
) -> None:
    data.clinic("Riverside Dermatology", email="sam@riverside.example")
    with TestClient(create_app(data.rt)) as client:
        cookie = client.get("/clinic/sign-in").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/clinic" in cookie
    assert "secure" not in cookie


def test_the_session_cookie_is_secure_when_the_public_url_is_https(data: Site) -> None:
    rt = data.rt
    rt.settings = rt.settings.model_copy(
        update={"public_base_url": "https://reminders.example.org"}
    )
    with TestClient(create_app(rt), base_url="https://testserver") as client:
        cookie = client.get("/clinic/sign-in").headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie


def test_a_made_up_session_cookie_is_not_a_session(data: Site) -> None:
    data.clinic("Riverside Dermatology", email="sam@riverside.example")
    with TestClient(create_app(data.rt), follow_redirects=False) as client:
        client.cookies.set("reminders_session", "a" * 43, path="/clinic")
        response = client.get("/clinic/patients")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/clinic/sign-in")
    assert 'reminders_session=""' in response.headers["set-cookie"]  # and it is taken away


def test_pages_send_visitors_who_are_not_signed_in_to_the_sign_in_page(data: Site) -> None:
    with TestClient(create_app(data.rt), follow_redirects=False) as client:
        response = client.get("/clinic/patients?status=active")
    assert response.status_code == 303
    assert response.headers["location"] == "/clinic/sign-in?next=/clinic/patients"


def test_sign_in_never_redirects_to_another_site(data: Site) -> None:
    data.clinic("Riverside Dermatology", email="sam@riverside.example")
    with TestClient(create_app(data.rt), follow_redirects=False) as client:
        form = {
            "csrf_token": csrf(client),
            "email": "SAM@riverside.example ",
            "password": PASSWORD,
            "next": "//evil.example/clinic/",
        }
        response = client.post("/clinic/sign-in", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/clinic"


def test_another_clinics_course_cannot_be_changed(data: Site) -> None:
    first = data.clinic("Riverside Dermatology", email="sam@riverside.example")
    data.clinic("Hillside Skin Care", email="kim@hillside.example")
    patient, course = data.patient(first)
    client = signed_in_client(data.rt, "kim@hillside.example")
    with client:
        token = csrf(client, "/clinic/patients")
        changed = client.post(f"/clinic/courses/{course.id}/pause", data={"csrf_token": token})
        page = client.get(f"/clinic/patients/{patient.id}")
        garbage = client.get("/clinic/patients/not-a-number")
    assert (changed.status_code, page.status_code, garbage.status_code) == (404, 404, 404)
    assert "Ana" not in page.text
    assert course_status(data.rt, course.id) == CourseStatus.active


def test_pages_forbid_framing_and_caching(data: Site) -> None:
    with TestClient(create_app(data.rt)) as client:
        response = client.get("/clinic/sign-in")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_pages_are_not_in_the_api_schema(data: Site) -> None:
    data.rt.settings = data.rt.settings.model_copy(update={"api_docs": True})
    with TestClient(create_app(data.rt)) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/clinic")]
