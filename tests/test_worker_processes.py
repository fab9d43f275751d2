"""Real `reminders worker` processes: graceful shutdown, and a crash storm on PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from reminders.db import make_engine
from reminders.migrations import upgrade
from reminders.models import Message
from tests.fakes.twilio_server import TwilioServer
from tests.helpers import seed_due

# These tests run real processes on the real clock: they wait for work to finish, bounded by
# deadlines, never for time to pass.


@pytest.fixture
def twilio() -> Iterator[TwilioServer]:
    with TwilioServer() as server:
        yield server


def worker_env(database_url: str, twilio: TwilioServer, log: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SMTP_"))}
    env.pop("REMINDERS_TEST_CRASH_AFTER_SEND", None)
    env.update(
        DATABASE_URL=database_url,
        SMS_BACKEND="twilio",
        EMAIL_BACKEND="console",
        TWILIO_ACCOUNT_SID=twilio.account_sid,
        TWILIO_AUTH_TOKEN=twilio.auth_token,
        TWILIO_FROM_NUMBER="+12125550000",
        TWILIO_BASE_URL=twilio.url,
        SECRET_KEY="worker-process-secret-for-tests",
        TWILIO_MPS="2000",
        DISPATCH_INTERVAL="0.2",
        PLAN_INTERVAL="3600",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="json",
        WORKER_LOG=str(log),
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    # Logs go to a file: a pipe nobody reads would fill up and block the worker.
    with open(env["WORKER_LOG"], "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "reminders", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def statuses(engine) -> Counter:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        rows = session.exec(select(Message.status, func.count()).group_by(Message.status)).all()
    return Counter({status: count for status, count in rows})


def wait_until(condition, *, timeout: float, poll: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()


def test_sigterm_mid_batch_exits_zero_quickly_and_leaves_nothing_sending(
    sqlite_url: str, twilio: TwilioServer, tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    seed_due(engine, 120, datetime.now(UTC))
    twilio.latency = 0.3  # a slow provider: the batch is still in flight when SIGTERM comes
    env = worker_env(
        sqlite_url, twilio, tmp_path / "worker.log", SEND_CONCURRENCY="4", BATCH_SIZE="120"
    )
    worker = start_worker(env)
    try:
        assert wait_until(lambda: len(twilio.messages) >= 4, timeout=30), "worker never sent"
        signalled = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=25)
        took = time.monotonic() - signalled
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert code == 0, (tmp_path / "worker.log").read_text()
    assert took < 25
    counts = statuses(engine)
    assert counts["sending"] == 0 and counts["unknown"] == 0
    assert counts["sent"] == len(twilio.messages)
    assert counts["sent"] + counts["pending"] == 120
    assert counts["pending"] > 0, "SIGTERM came mid-batch, so some sends were released"
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("fault_rate", [0.0, 0.1], ids=["clean", "10pct-429-500"])
def test_four_workers_under_kills_send_every_message_exactly_once(
    postgres_url: str, fault_rate: float, tmp_path: Path
) -> None:
    """4 workers, 2,000 due messages, a worker SIGKILLed and replaced every 3 s and at each
    quarter of the sends, and workers that die right after the provider accepted a message,
    before recording it."""
    total = 2000
    lease, reap_every = 3, 1
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    phones = seed_due(engine, total, datetime.now(UTC))
    rng = random.Random(42)
    with TwilioServer(fault_rate=fault_rate, seed=7) as twilio:
        env = worker_env(
            postgres_url,
            twilio,
            tmp_path / "workers.log",
            LEASE_SECONDS=str(lease),
            TWILIO_TIMEOUT="2",  # a lease must outlast a send
            SMTP_TIMEOUT="2",
            REAP_INTERVAL=str(reap_every),
            RETRY_BASE_SECONDS="0.5",
            RETRY_CAP_SECONDS="2",
            # Small batches: a killed worker strands fewer rows for the reaper.
            BATCH_SIZE="20",
            SEND_CONCURRENCY="8",
            REMINDERS_TEST_CRASH_AFTER_SEND="0.003",
        )
        workers = [start_worker(env) for _ in range(4)]
        kills = crashes = 0
        last_disruption = time.monotonic()
        next_kill = time.monotonic() + 3
        # A fast machine may send everything within a few seconds; these kills come mid-run
        # however quick it is.
        kill_at_sent = [total // 4, total // 2, total * 3 // 4]
        began = next_report = time.monotonic()
        deadline = time.monotonic() + 240
        try:
            while time.monotonic() < deadline:
                sent = statuses(engine)["sent"]
                if sent == total:
                    break
                for index, worker in enumerate(workers):
                    if worker.poll() is not None:  # died on its own, after a send
                        crashes += 1
                        last_disruption = time.monotonic()
                        workers[index] = start_worker(env)
                quarter_passed = bool(kill_at_sent) and sent >= kill_at_sent[0]
                if quarter_passed:
                    kill_at_sent.pop(0)
                if quarter_passed or time.monotonic() >= next_kill:
                    index = rng.randrange(len(workers))
                    workers[index].kill()
                    workers[index].wait()
                    workers[index] = start_worker(env)
                    kills += 1
                    last_disruption = time.monotonic()
                    next_kill = time.monotonic() + 3
                if time.monotonic() >= next_report:
                    print(f"t={time.monotonic() - began:.0f}s {dict(statuses(engine))}")
                    next_report += 5
                time.sleep(0.1)
            done_at = time.monotonic()
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=25)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        received = Counter(message.to for message in twilio.messages)
    counts = statuses(engine)
    engine.dispose()
    assert counts == Counter({"sent": total}), counts
    duplicates = {to: n for to, n in received.items() if n > 1}
    assert not duplicates, f"sent twice: {len(duplicates)}"
    assert set(received) == set(phones)
    assert kills >= 3, "the storm was real"
    # The last stranded row was recovered within one lease and one reaper round (plus the
    # time a fresh worker takes to start and tick).
    assert done_at - last_disruption <= lease + reap_every + 10
    print(f"kills={kills} self-crashes={crashes} received={sum(received.values())}")
