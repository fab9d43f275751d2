"""The benchmark's quick mode runs end to end as a smoke test; its figures are not checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES, postgres_available

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {"pipeline", "history", "planning", "naive", "lag", "load"}


def test_quick_run_completes_and_writes_every_scenario(tmp_path: Path) -> None:
    reason = postgres_available()
    if reason is not None and REQUIRE_POSTGRES:
        pytest.fail(reason)
    databases = ["sqlite"] if reason is not None else ["sqlite", "postgres"]
    out = tmp_path / "bench.json"
    env = {**os.environ, "REMINDERS_BENCH_POSTGRES_URL": POSTGRES_URL}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--db",
            "both" if len(databases) == 2 else "sqlite",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["errors"] == {}
    assert set(report["results"]) == SCENARIOS
    for scenario, by_database in report["results"].items():
        assert set(by_database) == set(databases), scenario
    assert report["figures"], "the table has rows"
    for database in databases:
        # Not speed, so checked even here: ours neither repeats nor loses a send when one of
        # two workers is killed. (A STOP under load can be answered 503 for Twilio to retry,
        # which the benchmark does not do: tests/api/test_under_load.py holds that guarantee.)
        crash = report["results"]["naive"][database]["crash"]["ours"]
        assert (crash["duplicates"], crash["lost"]) == (0, 0), database
