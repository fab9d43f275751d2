"""The figures of a run, their targets, the table and the machine they were measured on."""

from __future__ import annotations

import math
import platform
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.sizes import WIDE_CONCURRENCY

SCENARIOS = ("pipeline", "history", "planning", "naive", "lag", "load")


@dataclass
class Figure:
    scenario: str
    name: str
    unit: str
    values: dict[str, float | None]
    target: str = ""
    met: dict[str, bool | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "figure": self.name,
            "unit": self.unit,
            "values": self.values,
            "target": self.target,
            "met": self.met,
        }


def _get(results: dict[str, Any], kind: str, *path: str) -> float | None:
    node: Any = results.get(kind)
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def figures(results: dict[str, dict[str, Any]], kinds: list[str]) -> list[Figure]:
    """The headline figures, each with its target checked per database."""
    out: list[Figure] = []

    def add(
        scenario: str,
        name: str,
        unit: str,
        path: tuple[str, ...],
        target: str = "",
        check: Callable[[float], bool] | None = None,
        checked: tuple[str, ...] = ("sqlite", "postgres"),
    ) -> None:
        values = {kind: _get(results.get(scenario, {}), kind, *path) for kind in kinds}
        met: dict[str, bool | None] = {}
        if check is not None:
            for kind, value in values.items():
                unknown = value is None or math.isnan(value) or kind not in checked
                met[kind] = None if unknown else check(value)  # type: ignore[arg-type]
        out.append(Figure(scenario, name, unit, values, target, met))

    wide = f"200ms_c{WIDE_CONCURRENCY}"
    add("pipeline", "0 ms: pipeline", "msg/s", ("0ms", "pipeline_mps"))
    add("pipeline", "0 ms: raw requests", "msg/s", ("0ms", "raw_mps"))
    add("pipeline", "0 ms: twilio client alone", "msg/s", ("0ms", "twilio_client_mps"))
    add(
        "pipeline",
        "0 ms: pipeline / raw",
        "ratio",
        ("0ms", "pipeline_over_raw"),
        ">= 0.7",
        lambda v: v >= 0.7,
    )
    add("pipeline", "200 ms, 8 threads: pipeline", "msg/s", ("200ms", "pipeline_mps"))
    add(
        "pipeline",
        "200 ms, 8 threads: pipeline / raw",
        "ratio",
        ("200ms", "pipeline_over_raw"),
        ">= 0.8",
        lambda v: v >= 0.8,
    )
    add(
        "pipeline",
        "200 ms, 8 threads: pipeline / serial",
        "ratio",
        ("200ms", "pipeline_over_serial"),
        "(8 threads cap it at 8)",
    )
    add(
        "pipeline", f"200 ms, {WIDE_CONCURRENCY} threads: pipeline", "msg/s", (wide, "pipeline_mps")
    )
    add("pipeline", f"200 ms, {WIDE_CONCURRENCY} threads: raw requests", "msg/s", (wide, "raw_mps"))
    add(
        "pipeline",
        f"200 ms, {WIDE_CONCURRENCY} threads: pipeline / raw",
        "ratio",
        (wide, "pipeline_over_raw"),
        ">= 0.8",
        lambda v: v >= 0.8,
    )
    add(
        "pipeline",
        f"200 ms, {WIDE_CONCURRENCY} threads: pipeline / serial",
        "ratio",
        (wide, "pipeline_over_serial"),
        ">= 50",
        lambda v: v >= 50,
    )

    history_sizes = _sizes(results.get("history", {}), kinds)
    for size in history_sizes:
        add("history", f"tick of 1k due, outbox {_count(size)}", "ms", (size, "tick_ms"))
        add("history", f"claim of 1k due, outbox {_count(size)}", "ms", (size, "claim_ms"))
    if history_sizes:
        ratio = f"{_count(history_sizes[-1])}/{_count(history_sizes[0])}"
        add("history", f"tick ratio {ratio}", "ratio", ("ratio", "tick"), "<= 2", lambda v: v <= 2)

    for key in _sizes(results.get("planning", {}), kinds):
        population, _, size = key.partition("_")
        add(
            "planning",
            f"plan {_count(size)} courses ({population})",
            "courses/s",
            (key, "courses_per_second"),
        )
        add(
            "planning",
            f"plan {_count(size)} courses ({population})",
            "s",
            (key, "seconds"),
            "< 10 s on SQLite (100k)" if size == "100000" else "",
            (lambda v: v < 10) if size == "100000" else None,
            checked=("sqlite",),
        )

    add("naive", "schedule: ours (plan_all)", "s", ("ours_schedule_seconds",))
    add("naive", "schedule: naive (plan + job store)", "s", ("naive_schedule_seconds",))
    add("naive", "schedule: naive / ours", "ratio", ("schedule_ratio",), ">= 20", lambda v: v >= 20)
    add("naive", "fire due: ours (ticks)", "s", ("ours_fire_seconds",))
    add("naive", "fire due: naive (scheduler)", "s", ("naive_fire_seconds",))
    add("naive", "fire due: naive / ours", "ratio", ("fire_ratio",), ">= 20", lambda v: v >= 20)
    for design in ("naive", "ours"):
        zero = (lambda v: v == 0) if design == "ours" else None
        target = "0" if design == "ours" else ""
        for what in ("duplicates", "lost"):
            add(
                "naive",
                f"one of 2 processes killed: {design}, {what}",
                "sends",
                ("crash", design, what),
                target,
                zero,
            )

    lag_sizes = _sizes(results.get("lag", {}), kinds)
    for size in lag_sizes:
        add("lag", f"lag p50, {_count(size)} courses", "s", (size, "lag_p50_seconds"))
        add(
            "lag",
            f"lag p99, {_count(size)} courses",
            "s",
            (size, "lag_p99_seconds"),
            "<= 3 s (1 s tick + 2 s)",
            lambda v: v <= 3,
        )
        add("lag", f"worker peak RSS, {_count(size)} courses", "MB", (size, "peak_rss_mb"))
    if lag_sizes:
        add("lag", "peak RSS growth", "%", ("rss_growth", "peak"), "< 20 %", lambda v: v < 0.2)
        out[-1].values = {k: None if v is None else v * 100 for k, v in out[-1].values.items()}
    out += _load_figures(results.get("load", {}), kinds)
    return out


def _load_figures(load: dict[str, Any], kinds: list[str]) -> list[Figure]:
    """The load scenario's figures; its latency targets differ per database (bench/load.py)."""
    if not load:
        return []
    found: list[Figure] = []

    def add(name: str, unit: str, path: tuple[str, ...], target: str = "", met: str = "") -> None:
        values = {kind: _get(load, kind, *path) for kind in kinds}
        verdicts: dict[str, bool | None] = {}
        if met:
            for kind in kinds:
                verdict = load.get(kind, {}).get(met)
                verdicts[kind] = verdict if isinstance(verdict, bool) else None
        found.append(Figure("load", name, unit, values, target, verdicts))

    add("requests during the import", "req/s", ("requests_per_second",))
    add("10k-row import (API)", "s", ("import_seconds",))
    add("responses 5xx (or none)", "count", ("5xx",), "0", "met_5xx")
    add("'database is locked' in the logs", "count", ("locked",), "0", "met_locked")
    add("lines of a busy database in the logs", "count", ("busy_lines",), "0", "met_locked")
    add("webhook p50", "ms", ("webhook", "p50_ms"))
    add("webhook p99", "ms", ("webhook", "p99_ms"), "< 500 ms SQLite, < 250 PG", "met_webhook_p99")
    add("staff API p50", "ms", ("staff", "p50_ms"))
    add("staff API p99", "ms", ("staff", "p99_ms"), "< 1 s SQLite, < 500 ms PG", "met_staff_p99")
    add("STOPs sent", "count", ("stops_sent",))
    add("STOPs not applied", "count", ("stops_missed",), "0", "met_stops")
    add("  of which recorded, left for the worker", "count", ("stops_left_for_worker",))
    return found


def _sizes(scenario: dict[str, Any], kinds: list[str]) -> list[str]:
    """The size keys a scenario reported (numbers, or population_number), in run order."""
    for kind in kinds:
        keys = [k for k in scenario.get(kind, {}) if k[-1:].isdigit()]
        if keys:
            return keys
    return []


def _count(size: str) -> str:
    number = int(size)
    if number >= 1_000_000 and number % 1_000_000 == 0:
        return f"{number // 1_000_000}M"
    if number >= 1000 and number % 1000 == 0:
        return f"{number // 1000}k"
    return str(number)


def _format(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit in ("s",):
        return f"{value:.2f}"
    if unit in ("count", "sends"):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def table(found: list[Figure], kinds: list[str]) -> str:
    """The figures as a fixed-width table, one row per figure."""
    header = ["scenario", "figure", "unit", *kinds, "target", "met"]
    rows = [header]
    for figure in found:
        verdicts = [{True: "yes", False: "NO", None: "-"}[figure.met.get(kind)] for kind in kinds]
        met = "/".join(verdicts) if figure.met else ""
        rows.append(
            [
                figure.scenario,
                figure.name,
                figure.unit,
                *(_format(figure.values.get(kind), figure.unit) for kind in kinds),
                figure.target,
                met,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {3 + i for i in range(len(kinds))}
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine(postgres_engine: Any | None) -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "cpus": _nproc(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(_mem_total_kb() / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }
    for package in ("sqlalchemy", "psycopg", "twilio", "requests", "apscheduler"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    if postgres_engine is not None:
        with postgres_engine.connect() as connection:
            info["postgresql"] = connection.execute(text("SHOW server_version")).scalar()
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None
    return info


def _nproc() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _mem_total_kb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def markdown(found: list[Figure], kinds: list[str]) -> str:
    """The figures as a Markdown table, for BENCHMARKS.md."""
    lines = [
        "| scenario | figure | unit | " + " | ".join(kinds) + " | target | met |",
        "|---|---|---|" + "---:|" * len(kinds) + "---|---|",
    ]
    for figure in found:
        values = [_format(figure.values.get(kind), figure.unit) for kind in kinds]
        verdicts = [
            {True: "yes", False: "**no**", None: "-"}[figure.met.get(kind)] for kind in kinds
        ]
        met = " / ".join(verdicts) if figure.met else ""
        target = figure.target.replace("<", "&lt;").replace(">", "&gt;")
        lines.append(
            f"| {figure.scenario} | {figure.name} | {figure.unit} | "
            + " | ".join(values)
            + f" | {target} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    """`python -m bench.report [PATH]`: a saved run's figures as a Markdown table."""
    import json
    import sys

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/results/latest.json")
    report = json.loads(path.read_text())
    kinds = report["databases"]
    print(markdown(figures(report["results"], kinds), kinds))


if __name__ == "__main__":
    main()
