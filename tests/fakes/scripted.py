"""A test channel: records what it is given and answers with scripted outcomes."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Collection
from datetime import datetime

from reminders.channels.base import DeliveryError, OutgoingMessage, Receipt


class ScriptedTransport:
    """Accepts every message unless a scripted error is queued for it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[OutgoingMessage] = []
        self.attempts: list[OutgoingMessage] = []
        self.errors: deque[DeliveryError] = deque()
        self.on_send: Callable[[OutgoingMessage], None] | None = None
        self._lock = threading.Lock()

    def fail_next(self, error: DeliveryError, times: int = 1) -> None:
        self.errors.extend([error] * times)

    def send(self, message: OutgoingMessage) -> Receipt:
        with self._lock:
            self.attempts.append(message)
            if self.on_send is not None:
                self.on_send(message)
            if self.errors:
                raise self.errors.popleft()
            self.sent.append(message)
            return Receipt(provider_id=f"SM{message.outbox_id:032d}")

    def find_sent(self, *, to: str, body: str | Collection[str], since: datetime) -> str | None:
        """Like a provider's list: the id of an accepted message with this body to `to`."""
        bodies = {body} if isinstance(body, str) else set(body)
        for message in self.sent:
            if message.to == to and message.body in bodies:
                return f"SM{message.outbox_id:032d}"
        return None

    def close(self) -> None:
        return None
