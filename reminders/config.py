"""One typed settings object, read from the environment once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET = "change-me"


class Settings(BaseSettings):
    """Every setting of the service; see the README's configuration table."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite:///reminders.db"
    careplan_path: Path | None = None
    templates_path: Path = PROJECT_ROOT / "templates"

    sms_backend: Literal["console", "twilio"] = "console"
    email_backend: Literal["console", "smtp"] = "console"
    console_outbox: Path | None = None

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_from_number: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    twilio_mps: float = Field(default=1.0, gt=0)
    twilio_timeout: float = Field(default=15.0, gt=0)

    smtp_url: SecretStr | None = None
    email_from: str | None = None
    smtp_max_per_second: float = Field(default=5.0, gt=0)
    smtp_timeout: float = Field(default=30.0, gt=0)

    public_base_url: str | None = None
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    # "development" lets `reminders web` and `reminders worker` start with the default
    # SECRET_KEY, for a trial on a workstation; anything else needs a real key.
    reminders_env: Literal["production", "development"] = "production"
    metrics_token: SecretStr | None = None
    # The worker's own /metrics (off unless a port is given; 0 takes any free port, logged).
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    api_docs: bool = False

    session_idle_minutes: float = Field(default=30.0, gt=0)
    session_max_hours: float = Field(default=12.0, gt=0)

    log_format: Literal["auto", "text", "json"] = "auto"
    log_level: str = "INFO"

    sentry_dsn: SecretStr | None = None
    sentry_environment: str | None = None

    dispatch_interval: float = Field(
        default=5.0, gt=0, description="seconds between dispatch ticks"
    )
    plan_interval: float = Field(default=300.0, gt=0, description="seconds between planner passes")
    plan_horizon_days: int = Field(default=7, ge=1)
    batch_size: int = Field(default=100, ge=1)
    send_concurrency: int = Field(default=8, ge=1)
    lease_seconds: int = Field(default=120, ge=1)
    reap_interval: float = Field(default=30.0, gt=0, description="seconds between reaper runs")
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_cap_seconds: float = Field(default=1800.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    email_unknown_policy: Literal["resend", "mark_sent"] = "resend"
    # Twilio gives up on a webhook after 15 s: a text waits this long for a busy database,
    # then is answered 503 (and nothing is kept) in time for Twilio's fallback URL.
    inbound_wait_seconds: float = Field(default=10.0, gt=0, le=14)
    reply_notify_interval: float = Field(
        default=900.0, gt=0, description="at most one email to a clinic about replies per this"
    )
    # Undelivered reports in a row (handset unreachable) that mark a number unreachable.
    unreachable_after: int = Field(default=3, ge=1)
    # An unread reply joins the clinic's worklist once it has waited this many hours.
    worklist_reply_hours: float = Field(default=4.0, ge=0)

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> Settings:
        # A lease that ran out while its send was still waiting on the provider would let the
        # reaper settle a row whose outcome is not known yet.
        longest = max(self.twilio_timeout, self.smtp_timeout)
        if self.lease_seconds <= longest:
            raise ValueError(
                f"LEASE_SECONDS ({self.lease_seconds}) must be longer than the provider "
                f"timeouts (TWILIO_TIMEOUT, SMTP_TIMEOUT: {longest:g} s)"
            )
        return self

    @property
    def https(self) -> bool:
        """Whether the service is reached over https (PUBLIC_BASE_URL says so)."""
        return (self.public_base_url or "").lower().startswith("https://")

    @field_validator("database_url")
    @classmethod
    def _driver_url(cls, value: str) -> str:
        # Heroku-style platforms hand out postgres:// URLs; SQLAlchemy needs the driver named.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value


class ConfigError(Exception):
    """A setting that is missing or wrong; the message names the variable."""


def require_secret_key(settings: Settings) -> None:
    """ConfigError when SECRET_KEY is the default, unless REMINDERS_ENV=development.

    With the default key anyone could forge unsubscribe links and sign-in form tokens.
    """
    if settings.reminders_env == "development":
        return
    if settings.secret_key.get_secret_value() == DEFAULT_SECRET:
        raise ConfigError(
            "SECRET_KEY is the default: set a long random value "
            "(or REMINDERS_ENV=development on a workstation)"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use; a bad value is a ConfigError."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """One line naming the environment variable and what is wrong with it."""
    error = exc.errors()[0]
    name = "_".join(str(part) for part in error["loc"]).upper()
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{name}: {message}" if name else message
