"""Two-factor sign-in: enrolment with a QR code drawn on the server, codes computed by pyotp."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from freezegun import freeze_time
from sqlmodel import Session, select

from reminders.app import create_app
from reminders.models import StaffUser
from tests.conftest import NOW
from tests.web.conftest import PASSWORD, Site, TestClient, csrf, signed_in_client

EMAIL = "sam@riverside.example"
SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')


def enrol(site: Site) -> str:
    """Turn two-factor sign-in on for EMAIL through the account page; the secret."""
    client = signed_in_client(site.rt, EMAIL)
    with client:
        page = client.get("/clinic/account")
        found = SECRET.search(page.text)
        assert found, page.text
        secret = found.group(1)
        token = csrf(client, "/clinic/account")
        done = client.post(
            "/clinic/account/two-factor",
            data={"csrf_token": token, "code": pyotp.TOTP(secret).now()},
        )
    assert done.status_code == 303
    return secret


def password_step(client: TestClient) -> int:
    form = {"csrf_token": csrf(client), "email": EMAIL, "password": PASSWORD}
    response = client.post("/clinic/sign-in", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/clinic/sign-in/code"
    return client.get("/clinic/patients").status_code  # not signed in yet


def code_step(client: TestClient, code: str) -> int:
    token = csrf(client, "/clinic/sign-in/code")
    return client.post("/clinic/sign-in/code", data={"csrf_token": token, "code": code}).status_code


def test_the_enrolment_page_draws_the_qr_code_itself(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    client = signed_in_client(any_data.rt, EMAIL)
    with client:
        page = client.get("/clinic/account")
    assert page.status_code == 200
    assert "<svg" in page.text and "<img" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert SECRET.search(page.text)


def test_a_wrong_code_does_not_turn_two_factor_on(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    client = signed_in_client(any_data.rt, EMAIL)
    with client:
        client.get("/clinic/account")
        token = csrf(client, "/clinic/account")
        refused = client.post(
            "/clinic/account/two-factor", data={"csrf_token": token, "code": "000000"}
        )
    assert refused.status_code == 422
    with Session(any_data.rt.engine) as session:
        assert session.exec(select(StaffUser)).one().totp_secret is None


def test_with_two_factor_on_the_password_alone_does_not_sign_in(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    with freeze_time(NOW, real_asyncio=True) as clock:
        secret = enrol(any_data)
        clock.tick(timedelta(seconds=30))  # the next code: the enrolment's is used up
        with TestClient(create_app(any_data.rt), follow_redirects=False) as client:
            assert password_step(client) == 303
            assert code_step(client, "123456") == 400
            clock.tick(timedelta(seconds=2))  # past the growing delay after a failure
            assert code_step(client, pyotp.TOTP(secret).now()) == 303
            assert client.get("/clinic/patients").status_code == 200


def test_a_code_is_good_for_one_sign_in_only(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    with freeze_time(NOW, real_asyncio=True) as clock:
        secret = enrol(any_data)
        clock.tick(timedelta(seconds=30))
        code = pyotp.TOTP(secret).now()
        with TestClient(create_app(any_data.rt), follow_redirects=False) as first:
            password_step(first)
            assert code_step(first, code) == 303
        with TestClient(create_app(any_data.rt), follow_redirects=False) as second:
            password_step(second)
            assert code_step(second, code) == 400


def test_codes_are_throttled_like_passwords(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    with freeze_time(NOW, real_asyncio=True) as clock:
        secret = enrol(any_data)
        with TestClient(create_app(any_data.rt), follow_redirects=False) as client:
            password_step(client)
            for _ in range(5):
                clock.tick(timedelta(seconds=20))
                assert code_step(client, "000000") == 400
            clock.tick(timedelta(seconds=20))
            assert code_step(client, pyotp.TOTP(secret).now()) == 429


def test_two_factor_is_turned_off_with_a_current_code(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    with freeze_time(NOW, real_asyncio=True) as clock:
        secret = enrol(any_data)
        clock.tick(timedelta(seconds=30))
        with TestClient(create_app(any_data.rt), follow_redirects=False) as client:
            password_step(client)
            code_step(client, pyotp.TOTP(secret).now())
            clock.tick(timedelta(seconds=30))
            token = csrf(client, "/clinic/account")
            off = client.post(
                "/clinic/account/two-factor/off",
                data={"csrf_token": token, "code": pyotp.TOTP(secret).now()},
            )
    assert off.status_code == 303
    with Session(any_data.rt.engine) as session:
        assert session.exec(select(StaffUser)).one().totp_secret is None
