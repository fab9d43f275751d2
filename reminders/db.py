"""Engine and sessions for SQLite (one machine) and PostgreSQL (several workers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

# SQLite waits this long for the writer lock before it reports "database is locked".
SQLITE_BUSY_SECONDS = 30


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings each backend needs for safe concurrent use."""
    # A failed statement's parameters (a patient's name, phone, email) stay out of the error's
    # text, and so out of every log line and error report that quotes it.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS},
            **kwargs,
        )
        _sqlite_single_writer(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_single_writer(engine: Engine) -> None:
    # pysqlite opens transactions lazily and as DEFERRED, so two processes can both read a
    # pending row and then both write it. BEGIN IMMEDIATE takes the write lock up front:
    # one writer at a time, which is what makes a claim atomic on SQLite.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
