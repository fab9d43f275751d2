"""The Alembic migrations create exactly the tables the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

from reminders.db import make_engine
from reminders.migrations import alembic_config, upgrade


def test_upgrade_on_an_empty_database_matches_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
            tables = set(inspect(connection).get_table_names())
        assert {"clinic", "patient", "course", "courseevent", "consentevent", "outbox"} <= tables
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless_and_ends_at_the_head(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    upgrade(sqlite_url)
    head = ScriptDirectory.from_config(alembic_config(sqlite_url)).get_current_head()
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head
    finally:
        engine.dispose()
