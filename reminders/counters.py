"""Counters of this process for /metrics: sign-in failures and refusals by the throttle."""

from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter[str] = Counter()

SIGN_IN_FAILURES = "sign_in_failures"
SIGN_IN_LOCKOUTS = "sign_in_lockouts"


def increment(name: str) -> None:
    with _lock:
        _counts[name] += 1


def value(name: str) -> int:
    with _lock:
        return _counts[name]
