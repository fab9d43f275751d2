"""Runs the Alembic migrations from code (the CLI, tests and the release phase)."""

from __future__ import annotations

from alembic.config import Config

from alembic import command
from reminders.config import PROJECT_ROOT


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    return config


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema."""
    command.upgrade(alembic_config(url), "head")
