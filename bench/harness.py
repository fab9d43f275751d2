"""What every scenario builds on: a runtime for a bench database, a transport that does
nothing, production-like logging, and small statistics."""

from __future__ import annotations

import logging
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.databases import Database
from reminders.channels.base import OutgoingMessage, Receipt, Transport
from reminders.config import Settings
from reminders.dispatch import Dispatcher, TickReport
from reminders.logs import setup_logging
from reminders.render import Renderer
from reminders.runtime import Runtime, load_careplan


class NullTransport:
    """Accepts every message at once, so a measurement sees only the database and our code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> Receipt:
        with self._lock:
            self.sent += 1
        return Receipt(provider_id=f"null-{message.outbox_id}")

    def close(self) -> None:
        return None


def null_transports() -> dict[str, Transport]:
    return {"sms": NullTransport("sms"), "email": NullTransport("email")}


def runtime(db: Database, **overrides: Any) -> Runtime:
    """A runtime on `db` with explicit settings: nothing is read from the environment or .env."""
    settings = Settings(database_url=db.url, _env_file=None, **overrides)  # type: ignore[call-arg]
    renderer = Renderer(settings.templates_path)
    return Runtime(
        settings=settings,
        engine=db.engine,
        careplan=load_careplan(settings, renderer),
        renderer=renderer,
    )


def dispatcher(rt: Runtime, transports: dict[str, Transport]) -> Dispatcher:
    return Dispatcher(
        engine=rt.engine,
        settings=rt.settings,
        careplan=rt.careplan,
        renderer=rt.renderer,
        transports=transports,
        worker_id=f"bench-{os.getpid()}",
    )


def drain(dispatch: Dispatcher, *, limit: int | None = None) -> TickReport:
    """Tick until a tick claims nothing; the reports added up."""
    total = TickReport()
    while True:
        report = dispatch.tick(limit=limit)
        for name, value in vars(report).items():
            setattr(total, name, getattr(total, name) + value)
        if report.claimed == 0:
            return total


_devnull: Any = None


def production_logging() -> None:
    """Log as the worker does by default (INFO, JSON, contacts masked), into /dev/null.

    The formatting and masking of a log line per message is part of the pipeline's cost.
    """
    global _devnull
    setup_logging(Settings(_env_file=None, log_format="json", log_level="INFO"))  # type: ignore[call-arg]
    if _devnull is None:
        _devnull = open(os.devnull, "w")  # noqa: SIM115 (kept open for the process)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(_devnull)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
