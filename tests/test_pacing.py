"""RateLimiter on a fake clock: spacing, bursts, costs and threads, without real sleeping."""

from __future__ import annotations

import threading

import pytest

from reminders.pacing import RateLimiter
from tests.helpers import max_in_any_window


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(rate: float, clock: FakeClock, burst: float = 1.0) -> RateLimiter:
    return RateLimiter(rate, burst=burst, clock=clock, sleep=clock.sleep)


def grant_times(bucket: RateLimiter, clock: FakeClock, costs: list[float]) -> list[float]:
    times = []
    for cost in costs:
        bucket.acquire(cost)
        times.append(clock.now)
    return times


def test_first_request_goes_at_once() -> None:
    clock = FakeClock()

    limiter(5, clock).acquire()

    assert clock.slept == []


def test_requests_are_spaced_by_cost_over_rate() -> None:
    clock = FakeClock()

    times = grant_times(limiter(5, clock), clock, [1] * 4)

    assert [round(t - times[0], 9) for t in times] == [0, 0.2, 0.4, 0.6]


def test_no_one_second_window_holds_more_than_rate_units() -> None:
    clock = FakeClock()

    times = grant_times(limiter(10, clock), clock, [1] * 100)

    assert max_in_any_window(times) == 10


def test_a_multi_segment_request_delays_the_next_by_its_cost() -> None:
    clock = FakeClock()

    times = grant_times(limiter(1, clock), clock, [3, 1, 1])

    assert [t - times[0] for t in times] == [0, 3, 4]


def test_idle_time_is_not_saved_up_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = limiter(2, clock)
    bucket.acquire()
    clock.now += 60

    times = grant_times(bucket, clock, [1, 1, 1])

    assert [t - times[0] for t in times] == [0, 0.5, 1.0]


def test_burst_lets_that_many_through_at_once_and_the_second_still_holds_the_rate() -> None:
    clock = FakeClock()

    times = grant_times(limiter(4, clock, burst=3), clock, [1] * 5)

    # The fifth would make five in one second: it waits for the first to leave the window.
    assert [t - times[0] for t in times] == [0, 0, 0, 0.25, 1.0]


def test_threads_each_get_their_own_slot() -> None:
    clock = FakeClock()  # never advances: every thread reserves against the same instant
    bucket = limiter(10, clock)
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def take() -> None:
        start.wait()
        wait = bucket.reserve()
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(round(w, 9) for w in waits) == [round(n / 10, 9) for n in range(20)]


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0.5)])
def test_nonsense_settings_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst=burst)
