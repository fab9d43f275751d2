"""The web app over a real database, a clinic with its API key, and signed Twilio requests."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from freezegun import freeze_time
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel
from starlette.exceptions import StarletteDeprecationWarning
from twilio.request_validator import RequestValidator

with warnings.catch_warnings():
    # Starlette's test client now prefers the httpx2 package; httpx still works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from reminders.app import create_app
from reminders.db import session_scope
from reminders.models import Clinic, Patient
from reminders.runtime import Runtime
from reminders.services import create_clinic
from tests.conftest import NOW

BASE_URL = "https://reminders.example.org"
AUTH_TOKEN = "twilio-auth-token-for-tests"
METRICS_TOKEN = "metrics-token-for-tests"
PHONE = "+12125550101"


def with_web_settings(rt: Runtime) -> Runtime:
    """The runtime with a public URL, a Twilio auth token and a metrics token, as a deployed
    web process has."""
    rt.settings = rt.settings.model_copy(
        update={
            "public_base_url": BASE_URL,
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "secret_key": SecretStr("unsubscribe-secret-for-tests"),
            "metrics_token": SecretStr(METRICS_TOKEN),
        }
    )
    return rt


@dataclass
class Api:
    """A test client on the app, and the first clinic's key."""

    rt: Runtime
    client: TestClient
    clinic: Clinic
    key: str
    keys: dict[int, str] = field(default_factory=dict)

    def auth(self, key: str | None = None, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}", **headers}

    def get(self, path: str, key: str | None = None, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.auth(key, **kwargs.pop("headers", {})), **kwargs)

    def post(self, path: str, key: str | None = None, **kwargs: Any) -> Any:
        headers = self.auth(key, **kwargs.pop("headers", {}))
        return self.client.post(path, headers=headers, **kwargs)

    def patch(self, path: str, key: str | None = None, **kwargs: Any) -> Any:
        headers = self.auth(key, **kwargs.pop("headers", {}))
        return self.client.patch(path, headers=headers, **kwargs)

    def metrics(self) -> str:
        response = self.client.get("/metrics", headers=self.auth(METRICS_TOKEN))
        assert response.status_code == 200, response.text
        return response.text

    def add_clinic(self, name: str, **kwargs: Any) -> tuple[Clinic, str]:
        with session_scope(self.rt.engine) as session:
            clinic, key = create_clinic(
                session, name=name, help_contact="(212) 555-0199", now=NOW, **kwargs
            )
        return clinic, key

    def enroll(self, key: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "first_name": "Ana",
            "phone": PHONE,
            "channel": "sms",
            "timezone": "America/New_York",
            "start_date": NOW.date().isoformat(),
        }
        body.update(fields)
        response = self.post("/v1/patients", key, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def messages(self, patient_id: int, **params: Any) -> list[dict[str, Any]]:
        response = self.get(f"/v1/patients/{patient_id}/messages", params=params)
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def twilio(self, path: str, params: dict[str, str], *, signature: str | None = None) -> Any:
        """POST a form to a webhook, signed as Twilio signs it unless `signature` is given."""
        url = f"{BASE_URL}{path}"
        if signature is None:
            signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        return self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    def text(self, body: str, phone: str = PHONE, sid: str | None = None) -> Any:
        """A patient's text, signed; each one a new MessageSid unless `sid` names one."""
        sid = sid or f"SM{uuid.uuid4().hex}"
        params = {"From": phone, "To": "+15005550006", "Body": body, "MessageSid": sid}
        return self.twilio("/webhooks/twilio/inbound", params)

    def patient(self, patient_id: int) -> Patient:
        with Session(self.rt.engine) as session:
            found = session.get(Patient, patient_id)
            assert found is not None
            return found


def row_counts(rt: Runtime) -> dict[str, int]:
    """Rows in every table: a request that writes nothing leaves these unchanged."""
    with Session(rt.engine) as session:
        return {
            table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


def _api(rt: Runtime) -> Iterator[Api]:
    with freeze_time(NOW, real_asyncio=True):
        client = TestClient(create_app(with_web_settings(rt)))
        api = Api(rt=rt, client=client, clinic=None, key="")  # type: ignore[arg-type]
        api.clinic, api.key = api.add_clinic("Riverside Dermatology")
        with client:
            yield api


@pytest.fixture
def api(any_runtime: Runtime) -> Iterator[Api]:
    """The app on SQLite and on PostgreSQL, time frozen at NOW."""
    yield from _api(any_runtime)


@pytest.fixture
def sqlite_api(runtime: Runtime) -> Iterator[Api]:
    """The app on SQLite only (for the long runs), time frozen at NOW."""
    yield from _api(runtime)
