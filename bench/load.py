"""6. Load: the clinic's requests and Twilio's webhooks while an import writes and the worker sends.

Processes, as in production: `reminders web` (uvicorn) and `reminders worker` on one fresh
database, the Twilio-shaped server (bench/provider.py, 0 ms) as the worker's provider, and
locust (bench/traffic.py) as the clinic's staff and as Twilio. The database holds `patients`
active SMS courses, the first `due` of them with a welcome due now, so the worker sends at
full speed from its first tick. Once every locust user runs, a CSV import of `import_rows`
new patients is posted to `POST /v1/imports`; the figures count the requests made from the
moment the import was posted until it answered.

Staff (bearer key): list patients, read a timeline, enrol, pause and resume a course. Twilio
(signed as Twilio signs): STOP, START and free text from enrolled numbers, and "delivered"
status callbacks for the worker's sends. Afterwards: every number a STOP came from must be
opted out in the database, and the web and worker logs are searched for "database is locked".
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench.databases import Database, analyze, fresh
from bench.harness import percentile
from bench.lag import worker_env
from bench.provider import ROOT, Provider
from bench.seed import Seeder, bench_now, daytime_zone
from bench.sizes import Sizes
from reminders.db import session_scope
from reminders.services import create_clinic

PUBLIC_URL = "https://reminders.example.org"
LOCKED = "database is locked"
WEBHOOKS = ("POST inbound", "POST status")


@dataclass(frozen=True)
class Targets:
    webhook_p99_ms: float
    staff_p99_ms: float


# SQLite's targets; PostgreSQL's are half of them.
TARGETS = {"sqlite": Targets(500, 1000), "postgres": Targets(250, 500)}


def run(kind: str, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    folder = workdir / f"load-{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    with fresh(kind) as db, Provider() as provider:
        now = bench_now()
        with session_scope(db.engine) as session:
            clinic, key = create_clinic(
                session, name="Riverside Dermatology", help_contact="(212) 555-0100", now=now
            )
            clinic_id = clinic.id
        seeder = Seeder(db, now)
        first, last = seeder.courses(
            clinic_id=clinic_id, count=sizes.load_patients, planned_until=now + timedelta(days=30)
        )
        seeder.due_welcomes(courses=(first, first + sizes.load_due - 1))
        analyze(db)
        port = _free_port()
        env = worker_env(db, provider, folder / "worker.log")
        env.update(PUBLIC_BASE_URL=PUBLIC_URL, SECRET_KEY="bench-load-secret-key-0123456789")
        web = _start(["web", "--host", "127.0.0.1", "--port", str(port)], env, folder / "web.log")
        worker = _start(["worker"], env, folder / "worker.log")
        host = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(host, web)
            result = _drive(db, sizes, host=host, key=key, token=provider.auth_token, folder=folder)
            result["worker_alive"] = worker.poll() is None
            result["web_alive"] = web.poll() is None
        finally:
            for process in (worker, web):
                _stop(process)
        result["sent_at_provider"] = provider.count()
        result["locked_web"] = _count_in(folder / "web.log", LOCKED)
        result["locked_worker"] = _count_in(folder / "worker.log", LOCKED)
        result["locked"] = result["locked_web"] + result["locked_worker"]
        # The service logs only the type of a database error (its message may quote a
        # statement's values), so a lock timeout shows as these lines, not by its words.
        result["busy_lines"] = sum(
            _count_in(folder / name, needle)
            for name in ("web.log", "worker.log")
            for needle in ("the database stayed busy", "(OperationalError)")
        )
        result.update(_stops_applied(db, result.pop("stop_numbers")))
    result.update(_verdicts(kind, result))
    print(summary(kind, result), file=sys.stderr, flush=True)
    return result


def _drive(
    db: Database, sizes: Sizes, *, host: str, key: str, token: str, folder: Path
) -> dict[str, Any]:
    """Start the users, post the import, stop the users when it answers; the raw figures."""
    patients = sizes.load_patients
    # Separate pools of numbers, so a START never undoes a STOP the check expects.
    stop_pool = list(range(patients, patients - sizes.load_stops, -1))
    start_low = patients - sizes.load_stops
    start_pool = list(range(start_low - 200, start_low))
    text_pool = list(range(sizes.load_due + 1, start_low - 200))
    course_pool = list(range(1, min(sizes.load_due, 500) + 1))
    now = bench_now()
    plan = {
        "host": host,
        "key": key,
        "auth_token": token,
        "public_url": PUBLIC_URL,
        "patients": patients,
        "zone": daytime_zone(now),
        "today": now.date().isoformat(),
        "stop_pool": stop_pool,
        "start_pool": start_pool,
        "text_pool": text_pool,
        "course_pool": course_pool,
        "staff_users": sizes.load_staff_users,
        "twilio_users": sizes.load_twilio_users,
        "max_seconds": 900,
        "go": str(folder / "go"),
        "stop": str(folder / "stop"),
        "sent": str(folder / "sent.json"),
        "out": str(folder / "traffic.json"),
    }
    (folder / "plan.json").write_text(json.dumps(plan))
    feeding = threading.Event()
    feeder = threading.Thread(target=_feed_sent, args=(db, Path(plan["sent"]), feeding))
    feeder.start()
    with open(folder / "traffic.log", "ab") as log:
        traffic = subprocess.Popen(
            [sys.executable, "-m", "bench.traffic", str(folder / "plan.json")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        assert traffic.stdout is not None
        for line in traffic.stdout:
            if line.strip() == "ready":
                break
        else:
            raise RuntimeError(f"locust exited before its users ran; see {folder / 'traffic.log'}")
        csv = _import_file(sizes.load_import_rows, daytime_zone(now), now.date().isoformat())
        Path(plan["go"]).touch()
        began = time.monotonic()
        answer = httpx.post(
            f"{host}/v1/imports",
            files={"file": ("patients.csv", csv, "text/csv")},
            headers={"Authorization": f"Bearer {key}"},
            timeout=600,
        )
        import_seconds = time.monotonic() - began
        Path(plan["stop"]).touch()
        traffic.wait(timeout=120)
    finally:
        feeding.set()
        feeder.join()
        if traffic.poll() is None:
            traffic.kill()
            traffic.wait()
    if traffic.returncode != 0:
        raise RuntimeError(f"locust failed ({traffic.returncode}); see {folder / 'traffic.log'}")
    if answer.status_code != 201:
        raise RuntimeError(f"the import answered {answer.status_code}: {answer.text[:300]}")
    enrolled = len(answer.json().get("enrolled", []))
    if enrolled != sizes.load_import_rows:
        raise RuntimeError(f"the import enrolled {enrolled} of {sizes.load_import_rows}")
    traffic_out = json.loads(Path(plan["out"]).read_text())
    return {
        "patients": patients,
        "due": sizes.load_due,
        "import_rows": sizes.load_import_rows,
        "import_seconds": import_seconds,
        "staff_users": sizes.load_staff_users,
        "twilio_users": sizes.load_twilio_users,
        "window_seconds": traffic_out["seconds"],
        **_stats(traffic_out["requests"], traffic_out["seconds"]),
        "stop_numbers": traffic_out["stops"],
    }


def _import_file(rows: int, zone: str, today: str) -> bytes:
    lines = ["first_name,phone,email,channel,timezone,start_date"]
    lines += [f"Imported {n},+1212555{n:04d},,sms,{zone},{today}" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _stats(requests: list[list[Any]], seconds: float) -> dict[str, Any]:
    """Requests per second, percentiles per endpoint and per group, counts of 5xx."""
    by_name: dict[str, list[list[Any]]] = {}
    for request in requests:
        by_name.setdefault(request[0], []).append(request)

    def figures(rows: list[list[Any]]) -> dict[str, Any]:
        times = [row[2] for row in rows]
        return {
            "requests": len(rows),
            "per_second": len(rows) / seconds if seconds else float("nan"),
            "p50_ms": percentile(times, 50),
            "p95_ms": percentile(times, 95),
            "p99_ms": percentile(times, 99),
            "5xx": sum(1 for row in rows if row[1] >= 500),
            "no_answer": sum(1 for row in rows if row[1] == 0),
            "4xx": sum(1 for row in rows if 400 <= row[1] < 500),
        }

    webhook = [r for r in requests if r[0].startswith(WEBHOOKS)]
    staff = [r for r in requests if not r[0].startswith(WEBHOOKS)]
    return {
        "endpoints": {name: figures(rows) for name, rows in sorted(by_name.items())},
        "all": figures(requests),
        "webhook": figures(webhook),
        "staff": figures(staff),
        "requests_per_second": len(requests) / seconds if seconds else float("nan"),
        "5xx": sum(1 for r in requests if r[1] >= 500),
    }


def _verdicts(kind: str, result: dict[str, Any]) -> dict[str, Any]:
    targets = TARGETS[kind]
    return {
        "target_webhook_p99_ms": targets.webhook_p99_ms,
        "target_staff_p99_ms": targets.staff_p99_ms,
        "met_5xx": result["5xx"] == 0 and result["all"]["no_answer"] == 0,
        "met_locked": result["locked"] == 0 and result["busy_lines"] == 0,
        "met_webhook_p99": result["webhook"]["p99_ms"] < targets.webhook_p99_ms,
        "met_staff_p99": result["staff"]["p99_ms"] < targets.staff_p99_ms,
        "met_stops": result["stops_applied"] == result["stops_sent"],
    }


def summary(kind: str, result: dict[str, Any]) -> str:
    """The scenario's own table: every endpoint, then the targets with PASS or MISS."""
    lines = [
        f"load on {kind}: {result['requests_per_second']:.1f} requests/s over "
        f"{result['window_seconds']:.1f} s (the import of {result['import_rows']} rows); "
        f"{result['sent_at_provider']} sends at the provider",
        f"  {'endpoint':34} {'req':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'5xx':>4} {'4xx':>4}",
    ]
    rows = [*result["endpoints"].items(), ("(webhooks)", result["webhook"])]
    rows += [("(staff)", result["staff"]), ("(all)", result["all"])]
    for name, f in rows:
        lines.append(
            f"  {name:34} {f['requests']:>6} {f['per_second']:>7.1f} {f['p50_ms']:>8.0f}"
            f" {f['p95_ms']:>8.0f} {f['p99_ms']:>8.0f} {f['5xx']:>4} {f['4xx']:>4}"
        )

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    lines += [
        f"  {verdict(result['met_5xx'])}  5xx: {result['5xx']} (target 0; "
        f"{result['all']['no_answer']} without an answer)",
        f"  {verdict(result['met_locked'])}  'database is locked' in the logs: "
        f"{result['locked']} (web {result['locked_web']}, worker {result['locked_worker']});"
        f" lines of a busy database (its error's type only): {result['busy_lines']}",
        f"  {verdict(result['met_webhook_p99'])}  webhook p99 {result['webhook']['p99_ms']:.0f} ms"
        f" (target < {result['target_webhook_p99_ms']:.0f} ms)",
        f"  {verdict(result['met_staff_p99'])}  staff p99 {result['staff']['p99_ms']:.0f} ms"
        f" (target < {result['target_staff_p99_ms']:.0f} ms)",
        f"  {verdict(result['met_stops'])}  STOPs applied: {result['stops_applied']} of "
        f"{result['stops_sent']} ({result['stops_left_for_worker']} recorded, left for the "
        f"worker; {result['stops_not_recorded']} not recorded)",
    ]
    return "\n".join(lines)


def _feed_sent(db: Database, path: Path, done: threading.Event) -> None:
    """Every second, the latest sent rows for the users' status callbacks."""
    while not done.wait(1.0):
        with db.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, provider_id FROM outbox WHERE status = 'sent' "
                    "AND provider_id IS NOT NULL ORDER BY id DESC LIMIT 500"
                )
            ).all()
        partial = path.with_suffix(".part")
        partial.write_text(json.dumps([[row[0], row[1]] for row in rows]))
        partial.replace(path)


def _stops_applied(db: Database, numbers: list[str]) -> dict[str, Any]:
    """Of the numbers a STOP came from: opted out now; recorded but left for the worker's
    next pass over unapplied texts (it runs once a minute, the run does not wait for it);
    neither (the webhook answered 503 without keeping the text: Twilio would deliver it
    again, this benchmark does not)."""
    with db.engine.connect() as connection:
        opted = {
            row[0]
            for row in connection.execute(
                text("SELECT phone FROM patient WHERE sms_opted_out = :yes"),
                {"yes": True if db.is_postgres else 1},
            )
        }
        waiting = {
            row[0]
            for row in connection.execute(
                text("SELECT phone FROM inboundtext WHERE applied_at IS NULL")
            )
        }
    applied = sum(1 for number in numbers if number in opted)
    left = sum(1 for number in numbers if number not in opted and number in waiting)
    return {
        "stops_sent": len(numbers),
        "stops_applied": applied,
        "stops_left_for_worker": left,
        "stops_not_recorded": len(numbers) - applied - left,
        "stops_missed": len(numbers) - applied,
    }


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Logs go to a file: a pipe nobody reads would fill up and block the process.
    with open(log, "ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "reminders", *args],
            cwd=ROOT,
            env=env,
            stdout=stderr,
            stderr=stderr,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(host: str, web: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise RuntimeError(f"reminders web exited with {web.returncode}")
        try:
            if httpx.get(f"{host}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("reminders web did not answer /healthz within 60 s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _count_in(path: Path, needle: str) -> int:
    try:
        return path.read_text(errors="replace").count(needle)
    except OSError:
        return 0
