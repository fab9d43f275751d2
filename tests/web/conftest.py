"""The clinic pages served by a real uvicorn on loopback, driven by Debian's chromium.

Each test gets a fresh SQLite file and its own server; the browser is shared by the session,
with a new context (so new cookies) per test. The server runs in a thread on the real
clock, so data is seeded relative to now, never under freezegun.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from reminders.app import create_app
from reminders.clock import utcnow
from reminders.db import session_scope
from reminders.models import Clinic, Course, Message, Patient
from reminders.runtime import Runtime
from reminders.services import create_clinic, enroll
from reminders.staff import create_staff
from tests.conftest import make_runtime

with warnings.catch_warnings():
    # Starlette's test client now prefers the httpx2 package; httpx still works the same.
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

CHROMIUM = Path("/usr/bin/chromium")
# CI installs chromium and sets this, so that a missing browser fails instead of skipping.
REQUIRE_BROWSER = os.environ.get("REMINDERS_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
SECRET = "web-session-secret-for-tests"


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[test]')"
    return None


class _Server(uvicorn.Server):
    """uvicorn that says when it listens, so tests wait for an event, not a sleep."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


@dataclass
class Site:
    """A running server on a fresh database, and builders for its data."""

    rt: Runtime
    url: str
    key: str = ""  # the API key of the latest clinic made

    def clinic(self, name: str, *, email: str, role: str = "staff", **kwargs: Any) -> Clinic:
        """A clinic with one staff user (of `role`), whose password is PASSWORD."""
        with session_scope(self.rt.engine) as session:
            clinic, self.key = create_clinic(
                session, name=name, help_contact="(212) 555-0199", now=utcnow(), **kwargs
            )
        self.user(clinic, email, role=role)
        return clinic

    def user(self, clinic: Clinic, email: str, *, role: str = "staff") -> int:
        """Another staff user of the clinic, whose password is PASSWORD; their id."""
        with session_scope(self.rt.engine) as session:
            user = create_staff(
                session,
                clinic_id=clinic.id,  # type: ignore[arg-type]
                email=email,
                password=PASSWORD,
                role=role,
                now=utcnow(),
            )
            return user.id  # type: ignore[return-value]

    def patient(self, clinic: Clinic, **fields: Any) -> tuple[Patient, Course]:
        raw = {
            "first_name": "Ana",
            "phone": "+12125550101",
            "channel": "sms",
            "timezone": "America/Chicago",
            "start_date": utcnow().date().isoformat(),
        }
        raw.update(fields)
        now = utcnow()
        with session_scope(self.rt.engine) as session:
            return enroll(session, clinic=clinic, raw=raw, source="staff", ctx=self.rt.context(now))

    def messages(self, patient_id: int, status: str | None = None) -> list[Message]:
        with Session(self.rt.engine) as session:
            query = select(Message).where(Message.patient_id == patient_id)
            if status:
                query = query.where(Message.status == status)
            return list(session.exec(query).all())

    def count(self, model: type) -> int:
        with Session(self.rt.engine) as session:
            return len(session.exec(select(model)).all())


@contextmanager
def serve(rt: Runtime) -> Iterator[str]:
    """The app on a free loopback port for the duration of the block; stopped cleanly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(rt),
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(10), "the server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def web_runtime(engine: Engine) -> Runtime:
    rt = make_runtime(engine)
    rt.settings = rt.settings.model_copy(update={"secret_key": SecretStr(SECRET)})
    return rt


@pytest.fixture
def any_data(any_engine: Engine) -> Iterator[Site]:
    """Builders on a fresh database, SQLite and then PostgreSQL, without a server."""
    rt = make_runtime(any_engine)
    rt.settings = rt.settings.model_copy(update={"secret_key": SecretStr(SECRET)})
    yield Site(rt=rt, url="")


@pytest.fixture
def site(web_runtime: Runtime) -> Iterator[Site]:
    with serve(web_runtime) as url:
        yield Site(rt=web_runtime, url=url)


@pytest.fixture
def data(web_runtime: Runtime) -> Iterator[Site]:
    """Builders on a fresh database, without a server: the tests below use a TestClient."""
    yield Site(rt=web_runtime, url="")


TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client: TestClient, path: str = "/clinic/sign-in") -> str:
    found = TOKEN.search(client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def signed_in_client(rt: Runtime, email: str, base_url: str = "http://testserver") -> TestClient:
    client = TestClient(create_app(rt), base_url=base_url, follow_redirects=False)
    form = {"csrf_token": csrf(client), "email": email, "password": PASSWORD}
    response = client.post("/clinic/sign-in", data=form)
    assert response.status_code == 303, response.text
    return client


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = _browser_missing()
    if reason is not None:
        if REQUIRE_BROWSER:
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A fresh browser tab (no cookies) on the site; fails fast instead of hanging."""
    from playwright.sync_api import expect

    expect.set_options(timeout=5_000)
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/clinic/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """A picture of the page for reviewers, under artifacts/screenshots/ (not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def unlabelled_fields(page: Any) -> list[str]:
    """Form fields a screen reader could not name: each needs a <label> (or a legend)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length))
            .map(el => el.name || el.id)"""
    )
