"""Fresh, empty databases for one measurement: a SQLite file or a PostgreSQL schema."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from reminders.db import make_engine
from reminders.migrations import upgrade

POSTGRES_URL = os.environ.get(
    "REMINDERS_BENCH_POSTGRES_URL",
    os.environ.get(
        "REMINDERS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
)
KINDS = ("sqlite", "postgres")


@dataclass
class Database:
    kind: str  # "sqlite" | "postgres"
    url: str
    engine: Engine

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgres"


def postgres_reachable(url: str = POSTGRES_URL) -> str | None:
    """None when PostgreSQL answers at `url`, else why not."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        return None
    except Exception as exc:  # any failure to connect means: not available here
        return f"PostgreSQL not reachable at {url}: {type(exc).__name__}"
    finally:
        engine.dispose()


@contextmanager
def fresh(kind: str, *, postgres_url: str = POSTGRES_URL) -> Iterator[Database]:
    """An empty database at the newest schema (the Alembic migrations, as in production)."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="reminders-bench-"))
        url = f"sqlite:///{folder / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            yield Database(kind, url, engine)
        finally:
            engine.dispose()
            shutil.rmtree(folder, ignore_errors=True)
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        upgrade(url)
        yield Database(kind, url, engine)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def analyze(db: Database) -> None:
    """Refresh PostgreSQL's statistics after a bulk load, as autovacuum would within a minute.

    SQLite is left as the service leaves it: nothing in the package runs ANALYZE there.
    """
    if db.is_postgres:
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
