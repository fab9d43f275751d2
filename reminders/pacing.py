"""A thread-safe token bucket that keeps a sender under its provider's rate."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most `rate` units per second, with room for `burst` units at once.

    Each caller reserves its slot under the lock and sleeps outside it, so threads are served
    in arrival order and one slow sleeper never holds the others up. With `burst=1`, requests
    are spaced by cost/rate seconds: no one-second window sees more than `rate` units.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # The moment the bucket is full again (the "theoretical arrival time" of GCRA);
        # None means it has never been used, so it starts full.
        self._full_at: float | None = None
        self._sent: deque[tuple[float, float]] = deque()  # (start, units) in the last second

    def acquire(self, cost: float = 1.0) -> None:
        """Block until `cost` units may go out."""
        wait = self.reserve(cost)
        if wait > 0:
            self._sleep(wait)
        self._hold_to_window(cost)

    def _hold_to_window(self, cost: float) -> None:
        # Threads that overslept their slot (a busy machine) would otherwise go out together;
        # this hard check keeps every one-second window, as actually sent, within the rate.
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0][0] <= now - 1.0:
                    self._sent.popleft()
                used = sum(units for _, units in self._sent)
                if not self._sent or used + cost <= self.rate:
                    self._sent.append((now, cost))
                    return
                wait = self._sent[0][0] + 1.0 - now
            self._sleep(max(wait, 0.001))

    def reserve(self, cost: float = 1.0) -> float:
        """Claim the next slot for `cost` units and return how many seconds to wait for it."""
        if cost < 0:
            raise ValueError("cost must not be negative")
        with self._lock:
            now = self._clock()
            full_at = now if self._full_at is None else max(self._full_at, now)
            # A request may start once what is still owed plus its own cost fits in the
            # bucket; a request larger than the bucket waits for an empty debt, then borrows.
            start = max(now, full_at - max(0.0, self.burst - cost) / self.rate)
            self._full_at = max(full_at, start) + cost / self.rate
            return start - now
