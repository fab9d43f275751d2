"""Server-side sessions: a saved cookie is worth nothing once its session ended.

On SQLite and PostgreSQL, through the app in-process (the browser versions are in
test_access_in_browser.py); time is moved with freezegun, never waited for.
"""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time
from sqlmodel import Session, select

from reminders.app import create_app
from reminders.db import session_scope
from reminders.models import StaffSession
from reminders.sessions import token_hash
from reminders.staff import get_staff, reset_password, set_disabled
from tests.conftest import NOW
from tests.web.conftest import Site, TestClient, csrf, signed_in_client

EMAIL = "sam@riverside.example"


def replay(site: Site, cookie: str, path: str = "/clinic/patients") -> int:
    """The status a fresh client gets for `path` with a saved session cookie."""
    with TestClient(create_app(site.rt), follow_redirects=False) as client:
        client.cookies.set("reminders_session", cookie, path="/clinic")
        return client.get(path).status_code


def saved_cookie(client: TestClient) -> str:
    cookie = client.cookies.get("reminders_session")
    assert cookie
    return cookie


def test_the_cookie_holds_a_random_token_and_the_table_only_its_hash(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    client = signed_in_client(any_data.rt, EMAIL)
    cookie = saved_cookie(client)
    with Session(any_data.rt.engine) as session:
        rows = session.exec(select(StaffSession)).all()
    assert [row.token_hash for row in rows] == [token_hash(cookie)]
    assert cookie not in {row.token_hash for row in rows}
    assert replay(any_data, cookie) == 200


def test_a_saved_cookie_is_refused_after_sign_out(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    client = signed_in_client(any_data.rt, EMAIL)
    cookie = saved_cookie(client)
    with client:
        signed_out = client.post("/clinic/sign-out", data={"csrf_token": csrf(client, "/clinic")})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/clinic/sign-in?notice=signed-out"
    assert replay(any_data, cookie) == 303
    with Session(any_data.rt.engine) as session:
        assert session.exec(select(StaffSession)).all() == []


def test_a_saved_cookie_is_refused_after_30_idle_minutes(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    with freeze_time(NOW, real_asyncio=True) as clock:
        cookie = saved_cookie(signed_in_client(any_data.rt, EMAIL))
        clock.tick(timedelta(minutes=29))
        assert replay(any_data, cookie) == 200  # and the idle time starts again
        clock.tick(timedelta(minutes=29))
        assert replay(any_data, cookie) == 200
        clock.tick(timedelta(minutes=30, seconds=1))
        assert replay(any_data, cookie) == 303
        clock.tick(timedelta(seconds=1))
        assert replay(any_data, cookie) == 303  # gone for good, not only late


def test_a_busy_session_still_ends_after_12_hours(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    with freeze_time(NOW, real_asyncio=True) as clock:
        cookie = saved_cookie(signed_in_client(any_data.rt, EMAIL))
        for _ in range(35):  # a request every 20 minutes for 11 h 40 min
            clock.tick(timedelta(minutes=20))
            assert replay(any_data, cookie) == 200
        clock.tick(timedelta(minutes=21))
        assert replay(any_data, cookie) == 303


def test_the_lifetimes_are_settings(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    any_data.rt.settings = any_data.rt.settings.model_copy(update={"session_idle_minutes": 5})
    with freeze_time(NOW, real_asyncio=True) as clock:
        cookie = saved_cookie(signed_in_client(any_data.rt, EMAIL))
        clock.tick(timedelta(minutes=6))
        assert replay(any_data, cookie) == 303


def test_sign_out_everywhere_ends_every_session_of_the_user_only(any_data: Site) -> None:
    clinic = any_data.clinic("Riverside Dermatology", email=EMAIL)
    any_data.user(clinic, "kim@riverside.example")
    laptop = signed_in_client(any_data.rt, EMAIL)
    laptop_cookie = saved_cookie(laptop)
    phone = saved_cookie(signed_in_client(any_data.rt, EMAIL))
    colleague = saved_cookie(signed_in_client(any_data.rt, "kim@riverside.example"))
    with laptop:
        token = csrf(laptop, "/clinic/account")
        response = laptop.post("/clinic/sign-out-everywhere", data={"csrf_token": token})
    assert response.headers["location"] == "/clinic/sign-in?notice=everywhere"
    assert replay(any_data, laptop_cookie) == 303
    assert replay(any_data, phone) == 303
    assert replay(any_data, colleague) == 200


def test_disabling_a_user_ends_their_sessions_and_sign_in(any_data: Site) -> None:
    clinic = any_data.clinic("Riverside Dermatology", email=EMAIL)
    user_id = any_data.user(clinic, "kim@riverside.example")
    cookie = saved_cookie(signed_in_client(any_data.rt, "kim@riverside.example"))
    with session_scope(any_data.rt.engine) as session:
        user = get_staff(session, user_id=user_id)
        assert set_disabled(session, user=user, disabled=True, now=NOW) == 1
    assert replay(any_data, cookie) == 303
    with TestClient(create_app(any_data.rt), follow_redirects=False) as client:
        form = {
            "csrf_token": csrf(client),
            "email": "kim@riverside.example",
            "password": "correct horse battery staple",
        }
        assert client.post("/clinic/sign-in", data=form).status_code == 400


def test_a_new_password_ends_every_session_of_the_user(any_data: Site) -> None:
    clinic = any_data.clinic("Riverside Dermatology", email=EMAIL)
    user_id = any_data.user(clinic, "kim@riverside.example")
    cookie = saved_cookie(signed_in_client(any_data.rt, "kim@riverside.example"))
    with session_scope(any_data.rt.engine) as session:
        user = get_staff(session, user_id=user_id)
        assert reset_password(session, user=user, password="a brand new long passphrase") == 1
    assert replay(any_data, cookie) == 303


def test_signing_in_again_gives_a_new_token(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    client = signed_in_client(any_data.rt, EMAIL)
    first = saved_cookie(client)
    with client:
        form = {
            "csrf_token": csrf(client),
            "email": EMAIL,
            "password": "correct horse battery staple",
        }
        assert client.post("/clinic/sign-in", data=form).status_code == 303
    assert saved_cookie(client) != first
    assert replay(any_data, first) == 303
