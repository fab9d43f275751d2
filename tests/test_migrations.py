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


def test_the_clinics_key_and_its_staff_survive_the_staff_access_migration(
    database_url: str,
) -> None:
    from sqlalchemy import text

    from alembic import command
    from reminders.services import hash_api_key

    config = alembic_config(database_url)
    command.upgrade(config, "0001")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO clinic (id, name, help_contact, region, timezone, quiet_start,"
                    " quiet_end, send_time, ipledge_enabled, api_key_hash, created_at) VALUES"
                    " (1, 'Riverside', '', 'US', 'America/New_York', '21:00:00', '08:00:00',"
                    " '10:00:00', true, :hash, '2026-03-16 18:00:00')"
                ),
                {"hash": hash_api_key("rk_old-key")},
            )
            connection.execute(
                text(
                    "INSERT INTO staffuser (clinic_id, email, password_hash, created_at)"
                    " VALUES (1, 'sam@riverside.example', 'scrypt$x', '2026-03-16 18:00:00')"
                )
            )
        upgrade(database_url)
        with engine.connect() as connection:
            keys = connection.execute(
                text("SELECT clinic_id, name, key_hash, admin, revoked_at FROM apikey")
            ).all()
            roles = connection.execute(text("SELECT role FROM staffuser")).scalars().all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in keys] == [(1, "default", hash_api_key("rk_old-key"), True, None)]
    assert roles == ["admin"]
