"""Alembic environment: migrates the database named by DATABASE_URL (or the caller's URL)."""

from __future__ import annotations

from sqlmodel import SQLModel

from alembic import context
from reminders import models  # noqa: F401  (registers the tables)
from reminders.config import get_settings
from reminders.db import make_engine

config = context.config
url = config.attributes.get("url") or get_settings().database_url


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    if connection.dialect.name == "sqlite":
        # SQLite changes a column by copying its table; with foreign keys enforced, dropping
        # the old copy of a table others refer to fails. The pragma only works outside a
        # transaction, so it goes straight to the driver's connection (in autocommit).
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
