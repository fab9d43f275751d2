"""Settings: read once from the environment, and refused with the variable's name."""

from __future__ import annotations

import pytest

from reminders.config import ConfigError, get_settings


@pytest.fixture(autouse=True)
def fresh_settings():  # type: ignore[no-untyped-def]
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_heroku_style_postgres_urls_get_the_driver_named(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example:5432/reminders")
    assert get_settings().database_url == "postgresql+psycopg://u:p@db.example:5432/reminders"


def test_an_unknown_backend_is_refused_naming_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("SMS_BACKEND", "pigeon")
    with pytest.raises(ConfigError, match=r"^SMS_BACKEND: Input should be 'console' or 'twilio'"):
        get_settings()


def test_a_lease_shorter_than_a_send_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("LEASE_SECONDS", "10")
    monkeypatch.setenv("TWILIO_TIMEOUT", "15")
    with pytest.raises(ConfigError, match="LEASE_SECONDS .10. must be longer"):
        get_settings()


def test_secrets_are_not_shown_when_settings_are_printed(monkeypatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "very-secret-token")
    monkeypatch.setenv("SMTP_URL", "smtp://user:hunter2@mail.example:587")
    shown = repr(get_settings())
    assert "very-secret-token" not in shown and "hunter2" not in shown
