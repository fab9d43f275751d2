"""Records accepted sends in small groups: one transaction for many rows."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from reminders import lifecycle
from reminders.db import session_scope

log = logging.getLogger(__name__)


class Recorder:
    """Records accepted sends in small groups: one transaction for many rows.

    A commit per message would make the database, not the provider, the limit (on SQLite
    every sending thread queues for the one writer). A group is written when it reaches
    GROUP_SIZE or has waited GROUP_WAIT seconds, and at the end of the tick. Until then those
    rows are `sending`, exactly as between a send and its commit: if the worker dies, the
    reaper settles them when their lease runs out.
    """

    GROUP_SIZE = 50
    GROUP_WAIT = 0.2

    def __init__(self, engine: Engine, token: str, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.token = token
        self.clock = clock
        self.recorded = 0
        self.lost = 0
        self._pending: list[tuple[int, str | None, datetime]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()

    def sent(self, row_id: int, provider_id: str | None) -> None:
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append((row_id, provider_id, self.clock()))
            due = (
                len(self._pending) >= self.GROUP_SIZE
                or time.monotonic() - self._oldest >= self.GROUP_WAIT
            )
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            with session_scope(self.engine) as session:
                changed = lifecycle.record_sent(
                    session, token=self.token, sent=batch, now=self.clock()
                )
            self.recorded += changed
            if changed < len(batch):
                # Another worker took these rows over after their lease ran out.
                self.lost += len(batch) - changed
                log.warning("%d sends recorded after their lease was lost", len(batch) - changed)
