"""The load scenario's traffic: locust in library mode, in a process of its own.

`python -m bench.traffic PLAN.json` runs clinic staff and Twilio users against the web
process named in the plan. locust runs on gevent, which patches the standard library when it
is imported; in its own process that patching cannot reach the rest of the benchmark (its
threads, its database engines). The parent drives it through files:

- it prints `ready` once every user has started;
- when the file `plan["go"]` appears, the figures start afresh (everything counted from then
  on was made while the import ran);
- when the file `plan["stop"]` appears (or `plan["max_seconds"]` pass), the users stop and
  the results are written to `plan["out"]`: each request's endpoint, status and time, and the
  numbers every STOP was sent from.

Status callbacks report the sends the worker made: the parent writes `[outbox id, provider
SID]` pairs of sent rows to `plan["sent"]`, and the users read it once a second.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import contextlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

import gevent  # noqa: E402
from locust import FastHttpUser, between, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

PLAN: dict[str, Any] = {}
# Each request: [endpoint, status (0: no answer), milliseconds, started (epoch seconds)].
RECORDED: list[list[Any]] = []
STOPS: list[str] = []  # numbers a STOP was sent from, whatever the answer
_enrolled = itertools.count()
_courses: list[int] = []
_sent: list[list[Any]] = []
_sent_read = [0.0]


def on_request(name: str, response_time: float, response: Any, start_time: float, **_: Any) -> None:
    status = getattr(response, "status_code", 0) or 0
    RECORDED.append([name, int(status), float(response_time), float(start_time)])


def phone(patient_id: int) -> str:
    """The number the benchmark seeded for a patient id (bench/seed.py's numbering)."""
    return f"+1{2_120_000_000 + patient_id:010d}"


class Staff(FastHttpUser):
    """Clinic staff on the API: list, enrol, read a timeline, pause and resume a course."""

    wait_time = between(0.2, 1.0)
    network_timeout = 60.0
    connection_timeout = 60.0

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {PLAN['key']}"}

    @task(4)
    def list_patients(self) -> None:
        offset = random.randrange(0, PLAN["patients"], 50)
        self.client.get(
            f"/v1/patients?limit=50&offset={offset}", headers=self.auth, name="GET /v1/patients"
        )

    @task(4)
    def timeline(self) -> None:
        patient = random.randint(1, PLAN["patients"])
        self.client.get(
            f"/v1/patients/{patient}/messages",
            headers=self.auth,
            name="GET /v1/patients/{id}/messages",
        )

    @task(2)
    def enrol(self) -> None:
        n = next(_enrolled)
        body = {
            "first_name": f"Walk-in {n}",
            "phone": f"+1718555{n % 10_000:04d}",
            "channel": "sms",
            "timezone": PLAN["zone"],
            "start_date": PLAN["today"],
        }
        self.client.post("/v1/patients", json=body, headers=self.auth, name="POST /v1/patients")

    @task(1)
    def pause_and_resume(self) -> None:
        # Each user acts on courses of its own, so two users never race for one course.
        if not _courses:
            return
        course = _courses.pop()
        for action in ("pause", "resume"):
            self.client.post(
                f"/v1/courses/{course}/{action}",
                headers=self.auth,
                name=f"POST /v1/courses/{{id}}/{action}",
            )
        _courses.insert(0, course)


class Twilio(FastHttpUser):
    """Twilio's webhooks: patients' texts (STOP, START, anything) and status callbacks."""

    wait_time = between(0.2, 1.0)
    network_timeout = 60.0
    connection_timeout = 60.0

    def on_start(self) -> None:
        self.validator = RequestValidator(PLAN["auth_token"])

    def _post(self, path: str, params: dict[str, str], name: str) -> None:
        signature = self.validator.compute_signature(f"{PLAN['public_url']}{path}", params)
        self.client.post(
            path,
            data=urlencode(params),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
            name=name,
        )

    def _text(self, number: str, body: str, name: str) -> None:
        params = {
            "From": number,
            "To": "+12125550000",
            "Body": body,
            "MessageSid": f"SM{os.urandom(16).hex()}",
        }
        self._post("/webhooks/twilio/inbound", params, name)

    @task(2)
    def text_stop(self) -> None:
        pool = PLAN["stop_pool"]
        if not pool:
            self.text_other()
            return
        number = phone(pool.pop())
        STOPS.append(number)
        self._text(number, "STOP", "POST inbound STOP")

    @task(1)
    def text_start(self) -> None:
        self._text(phone(random.choice(PLAN["start_pool"])), "START", "POST inbound START")

    @task(2)
    def text_other(self) -> None:
        number = phone(random.choice(PLAN["text_pool"]))
        self._text(number, "Is it fine to take it with food?", "POST inbound text")

    @task(3)
    def status_callback(self) -> None:
        if time.monotonic() - _sent_read[0] > 1.0:
            _sent_read[0] = time.monotonic()
            # Not written yet, or being replaced: the last list stands.
            with contextlib.suppress(OSError, ValueError):
                _sent[:] = json.loads(Path(PLAN["sent"]).read_text())
        if not _sent:
            return
        outbox, sid = random.choice(_sent)
        params = {"MessageSid": sid, "MessageStatus": "delivered", "To": "+12125550000"}
        self._post(f"/webhooks/twilio/status?outbox={outbox}", params, "POST status callback")


def main() -> None:
    PLAN.update(json.loads(Path(sys.argv[1]).read_text()))
    random.seed(PLAN.get("seed", 0))
    _courses.extend(PLAN["course_pool"])
    Staff.fixed_count = PLAN["staff_users"]
    Twilio.fixed_count = PLAN["twilio_users"]
    env = Environment(user_classes=[Staff, Twilio], host=PLAN["host"])
    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    users = PLAN["staff_users"] + PLAN["twilio_users"]
    runner.start(users, spawn_rate=users)
    started = time.monotonic() + 60
    while runner.user_count < users:
        if time.monotonic() > started:
            sys.exit(f"only {runner.user_count} of {users} users started")
        gevent.sleep(0.05)
    print("ready", flush=True)
    deadline = time.monotonic() + PLAN["max_seconds"]
    go, stop = Path(PLAN["go"]), Path(PLAN["stop"])
    while not go.exists() and time.monotonic() < deadline:
        gevent.sleep(0.02)
    # From here on every request counts, and every STOP must be applied.
    RECORDED.clear()
    began = time.time()
    while not stop.exists() and time.monotonic() < deadline:
        gevent.sleep(0.02)
    ended = time.time()
    runner.quit()
    runner.greenlet.join(timeout=30)
    out = {
        "requests": [r for r in RECORDED if r[3] >= began],
        "late": sum(1 for r in RECORDED if r[3] < began),
        "stops": STOPS,
        "seconds": ended - began,
        "timed_out": not stop.exists(),
    }
    Path(PLAN["out"]).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
