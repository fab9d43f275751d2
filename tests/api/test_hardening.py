"""What every response carries, what is closed by default, and what never reaches a log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from reminders.app import create_app
from reminders.cli import app as cli_app
from reminders.config import get_settings
from reminders.logs import AccessLogWithoutQuery
from reminders.runtime import Runtime
from tests.api.conftest import METRICS_TOKEN, Api, TestClient


def client_with(rt: Runtime, **settings: object) -> TestClient:
    rt.settings = rt.settings.model_copy(update=settings)
    return TestClient(create_app(rt))


@pytest.mark.parametrize(
    "path",
    ["/v1/patients", "/v1/patients/1", "/healthz", "/clinic/sign-in", "/unsubscribe/x", "/nope"],
)
def test_every_response_is_not_stored_not_sniffed_not_framed_and_has_a_csp(
    api: Api, path: str
) -> None:
    response = api.get(path)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"]


def test_a_refused_body_carries_the_headers_too(api: Api) -> None:
    response = api.post("/v1/patients", content=b"x" * 70_000, headers={"Content-Type": "a/b"})
    assert response.status_code == 413
    assert response.headers["x-frame-options"] == "DENY"


def test_hsts_only_when_the_public_url_is_https(api: Api) -> None:
    assert "max-age=" in api.get("/healthz").headers["strict-transport-security"]
    with client_with(api.rt, public_base_url="http://localhost:8000") as plain:
        assert "strict-transport-security" not in plain.get("/healthz").headers


def test_metrics_are_not_there_without_a_token_setting(api: Api) -> None:
    with client_with(api.rt, metrics_token=None) as client:
        response = client.get("/metrics", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404


def test_metrics_need_the_token_when_it_is_set(api: Api) -> None:
    with client_with(api.rt) as client:
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer not-it"})
        right = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert "reminders_messages_due " in right.text


def test_the_api_documentation_is_off_by_default(api: Api) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert api.client.get(path).status_code == 404, path


def test_the_documentation_loads_only_this_sites_files_when_switched_on(api: Api) -> None:
    with client_with(api.rt, api_docs=True) as client:
        docs, redoc = client.get("/docs"), client.get("/redoc")
        schema = client.get("/openapi.json")
        scripts = [
            client.get(path)
            for path in (
                "/docs/assets/swagger-ui-bundle.js",
                "/docs/assets/redoc.standalone.js",
                "/docs/own/swagger-init.js",
            )
        ]
    assert (docs.status_code, redoc.status_code, schema.status_code) == (200, 200, 200)
    for page in (docs, redoc):
        assert "https://" not in page.text and "<script>" not in page.text
        assert "script-src 'self';" in page.headers["content-security-policy"]
    assert [script.status_code for script in scripts] == [200, 200, 200]
    assert "/v1/patients" in schema.json()["paths"]


def access_line(path: str) -> str:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200),
        None,
    )
    assert AccessLogWithoutQuery().filter(record)
    return record.getMessage()


def test_access_log_lines_lose_the_query_string() -> None:
    line = access_line("/clinic/patients?q=ana%40example.com&api_key=rk_secret")
    assert line == '127.0.0.1:5000 - "GET /clinic/patients?*** HTTP/1.1" 200'
    assert access_line("/healthz") == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'


@pytest.mark.parametrize("command", ["web", "worker"])
def test_web_and_worker_refuse_to_start_with_the_default_secret_key(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("REMINDERS_ENV", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file
    # Were the start not refused, nothing would listen.
    monkeypatch.setattr(uvicorn, "run", lambda *_args, **_kwargs: None)
    get_settings.cache_clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(cli_app, [command])
    finally:
        get_settings.cache_clear()
        root.handlers[:], root.level = handlers, level
    assert result.exit_code == 2
    assert "SECRET_KEY is the default" in result.output


def test_development_mode_lets_the_default_secret_key_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reminders.config import Settings, require_secret_key

    require_secret_key(Settings(_env_file=None, reminders_env="development"))  # type: ignore[call-arg]
    with pytest.raises(Exception, match="SECRET_KEY is the default"):
        require_secret_key(Settings(_env_file=None))  # type: ignore[call-arg]
