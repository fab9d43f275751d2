"""1. Pipeline vs raw: our whole send path against bare loops sending the same requests.

The pipeline is Dispatcher.tick in a loop until nothing is left: claim, load, decide, render,
send with the real TwilioSMS channel (the official twilio client), record each result. The
baselines POST exactly the form fields the pipeline sent (read back from the server), to the
same server, from the same number of threads: once with requests alone, once with the
twilio client alone. TWILIO_MPS is 10000, so our pacing never waits: it is not measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.databases import fresh
from bench.harness import dispatcher, drain, runtime, timed
from bench.provider import Provider
from bench.seed import Seeder, bench_now
from bench.senders import post_raw, post_twilio_client
from bench.sizes import WIDE_BATCH, WIDE_CONCURRENCY, Sizes
from reminders.channels.registry import build_transports
from reminders.config import Settings

DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]
MPS = 10_000


@dataclass(frozen=True)
class Case:
    name: str
    latency: float
    concurrency: int
    batch: int
    count: int
    serial: int = 0  # messages sent one at a time for the serial baseline (0: none)


def cases(sizes: Sizes) -> list[Case]:
    c, b = DEFAULTS.send_concurrency, DEFAULTS.batch_size
    return [
        Case("0ms", 0.0, c, b, sizes.pipeline_0ms),
        Case("200ms", 0.2, c, b, sizes.pipeline_200ms, serial=sizes.serial_200ms),
        Case(
            f"200ms_c{WIDE_CONCURRENCY}",
            0.2,
            WIDE_CONCURRENCY,
            WIDE_BATCH,
            sizes.pipeline_200ms_wide,
            serial=sizes.serial_200ms,
        ),
    ]


def run(kind: str, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    serial_mps: dict[float, float] = {}  # the one-at-a-time rate, measured once per latency
    with Provider() as provider:
        _warm_up(provider)
        for case in cases(sizes):
            result = _run_case(kind, case, provider, workdir, serial_mps)
            results[case.name] = result
    return results


def _warm_up(provider: Provider) -> None:
    """Import and connect once, so no loop pays first-use costs the others do not."""
    fields = [{"To": "+12125550100", "Body": "warm up", "From": "+12125550000"}] * 20
    post_twilio_client(provider, fields, concurrency=2)
    post_raw(provider, fields, concurrency=2)
    provider.reset()


def _run_case(
    kind: str,
    case: Case,
    provider: Provider,
    workdir: Path,
    serial_mps: dict[float, float] | None = None,
) -> dict[str, Any]:
    provider.set_latency(case.latency)
    with fresh(kind) as db:
        now = bench_now()
        seeder = Seeder(db, now)
        courses = seeder.courses(
            clinic_id=seeder.clinic(), count=case.count, planned_until=now + timedelta(days=30)
        )
        seeder.due_welcomes(courses=courses)
        rt = runtime(
            db,
            sms_backend="twilio",
            twilio_account_sid=provider.account_sid,
            twilio_auth_token=provider.auth_token,
            twilio_from_number="+12125550000",
            twilio_base_url=provider.url,
            twilio_mps=MPS,
            send_concurrency=case.concurrency,
            batch_size=case.batch,
        )
        dispatch = dispatcher(rt, build_transports(rt.settings))
        provider.reset()
        took, report = timed(lambda: drain(dispatch))
        if report.sent != case.count:
            raise RuntimeError(f"pipeline sent {report.sent} of {case.count}: {report}")
        received = provider.received(workdir / f"received-{kind}-{case.name}.json")
    fields = [message["fields"] for message in received]
    provider.reset()
    raw = post_raw(provider, fields, concurrency=case.concurrency)
    provider.reset()
    client = post_twilio_client(provider, fields, concurrency=case.concurrency)
    provider.reset()
    result: dict[str, Any] = {
        "latency_ms": round(case.latency * 1000),
        "concurrency": case.concurrency,
        "batch_size": case.batch,
        "messages": case.count,
        "twilio_mps_setting": MPS,
        "pipeline_seconds": took,
        "pipeline_mps": case.count / took,
        "raw_mps": case.count / raw,
        "twilio_client_mps": case.count / client,
    }
    result["pipeline_over_raw"] = result["pipeline_mps"] / result["raw_mps"]
    result["pipeline_over_twilio_client"] = result["pipeline_mps"] / result["twilio_client_mps"]
    if case.serial:
        known = {} if serial_mps is None else serial_mps
        if case.latency not in known:
            serial = post_raw(provider, fields[: case.serial], concurrency=1)
            provider.reset()
            known[case.latency] = case.serial / serial
        result["serial_messages"] = case.serial
        result["serial_mps"] = known[case.latency]
        result["pipeline_over_serial"] = result["pipeline_mps"] / result["serial_mps"]
    return result
