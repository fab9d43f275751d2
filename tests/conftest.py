"""Shared fixtures: a clean database per test (SQLite file or PostgreSQL schema), a runtime."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from reminders import models  # noqa: F401  (registers the tables)
from reminders.config import Settings
from reminders.db import make_engine
from reminders.render import Renderer
from reminders.runtime import Runtime, load_careplan

POSTGRES_URL = os.environ.get(
    "REMINDERS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# CI sets this so that a missing PostgreSQL fails the run instead of skipping its tests.
REQUIRE_POSTGRES = os.environ.get("REMINDERS_REQUIRE_POSTGRES") == "1"

# A Monday afternoon in New York, far from any DST change.
NOW = datetime(2026, 3, 16, 18, 0, tzinfo=UTC)

_postgres_state: dict[str, object] = {}


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    if "reason" not in _postgres_state:
        engine = make_engine(POSTGRES_URL)
        try:
            with engine.connect() as connection:
                connection.execute(text("select 1"))
            _postgres_state["reason"] = None
        except Exception as exc:  # any failure to connect means: not available here
            _postgres_state["reason"] = f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}"
        finally:
            engine.dispose()
    return _postgres_state["reason"]  # type: ignore[return-value]


def _require_postgres() -> None:
    reason = postgres_available()
    if reason is None:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the test server; dropped afterwards."""
    _require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    """A fresh SQLite database with the schema."""
    yield from _engine(sqlite_url)


@pytest.fixture
def any_engine(database_url: str) -> Iterator[Engine]:
    """A fresh database with the schema, on SQLite and then on PostgreSQL."""
    yield from _engine(database_url)


def make_runtime(engine: Engine, **overrides: object) -> Runtime:
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, _env_file=None, **overrides)  # type: ignore[call-arg]
    renderer = Renderer(settings.templates_path)
    return Runtime(
        settings=settings,
        engine=engine,
        careplan=load_careplan(settings, renderer),
        renderer=renderer,
    )


@pytest.fixture
def runtime(engine: Engine) -> Runtime:
    return make_runtime(engine)


@pytest.fixture
def any_runtime(any_engine: Engine) -> Runtime:
    return make_runtime(any_engine)
