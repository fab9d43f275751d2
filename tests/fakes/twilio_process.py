"""The Twilio-shaped server in a process of its own.

Rate tests read the time each request arrived. In the process under test those readings
wait on the same interpreter lock as the senders, and bunch up; a separate process stamps
arrivals when they happen.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tests.fakes.twilio_server import TwilioServer


@dataclass(frozen=True)
class Arrival:
    to: str
    body: str
    received_monotonic: float  # CLOCK_MONOTONIC is shared by every process on the machine


def _serve(conn: Connection, latency: float) -> None:
    with TwilioServer() as server:
        server.latency = latency
        conn.send((server.url, server.account_sid, server.auth_token))
        while (command := conn.recv()) != "stop":
            if command == "arrivals":
                conn.send([(m.to, m.body, m.received_monotonic) for m in server.messages])
    conn.send("stopped")


class TwilioProcess:
    """Start with `with TwilioProcess(latency=0.2) as twilio:`; read `twilio.arrivals()`."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.url = self.account_sid = self.auth_token = ""
        self._conn: Connection | None = None
        self._process: Any = None

    def __enter__(self) -> TwilioProcess:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, self.latency), daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        self.url, self.account_sid, self.auth_token = parent.recv()
        return self

    def arrivals(self) -> list[Arrival]:
        assert self._conn is not None
        self._conn.send("arrivals")
        return [Arrival(*item) for item in self._conn.recv()]

    def __exit__(self, *exc: object) -> None:
        assert self._conn is not None
        self._conn.send("stop")
        self._conn.recv()
        self._conn.close()
        self._process.join(timeout=10)
