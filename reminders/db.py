"""Engine and sessions for SQLite (one machine) and PostgreSQL (several workers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlmodel import Session

# SQLite waits this long for the writer lock before it reports "database is locked".
SQLITE_BUSY_SECONDS = 30
# The execution option that says how a SQLite transaction begins.
_BEGIN = "sqlite_begin"
# In a read_scope session's info: rows to write once the read is done (its audit entry).
LATER = "write_later"


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
        # A read (read_scope) begins DEFERRED: in WAL mode it never waits for the writer and
        # never makes a writer wait, however long an import or a planner pass writes.
        mode = connection.get_execution_options().get(_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One write transaction: committed when the block ends, rolled back if it raises.

    Keep it short: on SQLite it holds the database's only write lock from its first
    statement to its end.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """One read-only transaction that takes no write lock (a deferred one on SQLite).

    Nothing written inside it is kept: closing the session ends the transaction unwritten
    (and, unlike a rollback, leaves the loaded rows readable after the block). Rows a read
    must leave behind (its audit entry) go to `session.info[LATER]` and are written in a
    short transaction of their own once the read has let go of its connection, and only if
    the block ended without an error; never while holding it, which could leave every pooled
    connection held by a request waiting for another.
    """
    later: list[Any] = []
    with Session(reader(engine), expire_on_commit=False, info={LATER: later}) as session:
        yield session
    if later:
        with session_scope(engine) as writer:
            writer.add_all(later)


def reader(engine: Engine) -> Engine:
    """The engine's connections, beginning transactions that only read."""
    if engine.dialect.name != "sqlite":
        return engine
    # A light proxy sharing the engine's pool and events; only the option differs.
    return engine.execution_options(**{_BEGIN: "DEFERRED"})


@contextmanager
def session_waiting(engine: Engine, *, seconds: float) -> Iterator[Session]:
    """One transaction like session_scope, that waits at most `seconds` for a busy database
    (SQLite's write lock, PostgreSQL's row locks) before it fails with OperationalError.

    For a caller that must answer within a deadline, such as a webhook its sender gives up on;
    every other transaction keeps the engine's own, longer wait.
    """
    millis = max(1, int(seconds * 1000))
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # Set before the transaction begins: BEGIN IMMEDIATE is where SQLite waits.
            connection.connection.driver_connection.execute(f"PRAGMA busy_timeout={millis}")  # type: ignore[union-attr]
        try:
            with Session(bind=connection, expire_on_commit=False) as session:
                try:
                    if is_postgres(engine):
                        session.execute(text(f"SET LOCAL lock_timeout = {millis}"))
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        finally:
            if sqlite:
                connection.connection.driver_connection.execute(  # type: ignore[union-attr]
                    f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}"
                )
