"""`python -m bench`: run the scenarios, print the table, write the JSON.

Run from the repository root (the loopback provider is the test suite's Twilio fake).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the reminder pipeline, each beside a baseline of the same run.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_const",
        dest="mode",
        const="quick",
        help="smaller sizes, under 2 minutes on 2 cores",
    )
    mode.add_argument(
        "--smoke",
        action="store_const",
        dest="mode",
        const="smoke",
        help="tiny sizes: checks that every scenario runs, measures nothing",
    )
    mode.add_argument(
        "--full",
        action="store_const",
        dest="mode",
        const="full",
        help="the sizes of BENCHMARKS.md (the default)",
    )
    parser.set_defaults(mode="full")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument(
        "--only", help="comma-separated scenarios: pipeline,history,planning,naive,lag,load"
    )
    parser.add_argument(
        "--postgres-url",
        help="server to create schemas on "
        "(default: REMINDERS_BENCH_POSTGRES_URL, REMINDERS_TEST_POSTGRES_URL "
        "or postgresql+psycopg://postgres@127.0.0.1:5432/test)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    from bench import databases, history, lag, load, naive, pipeline, planning
    from bench.harness import production_logging
    from bench.report import SCENARIOS, figures, machine, table
    from bench.sizes import MODES

    if args.postgres_url:
        databases.POSTGRES_URL = args.postgres_url
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    chosen = SCENARIOS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        print(f"error: unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    postgres_engine = None
    if "postgres" in kinds:
        reason = databases.postgres_reachable(databases.POSTGRES_URL)
        if reason is not None:
            print(f"error: {reason} (use --db sqlite to run without it)", file=sys.stderr)
            return 2
        from reminders.db import make_engine

        postgres_engine = make_engine(databases.POSTGRES_URL)

    sizes = MODES[args.mode]
    production_logging()
    workdir = Path(tempfile.mkdtemp(prefix="reminders-bench-"))
    runners = {
        "pipeline": lambda kind: pipeline.run(kind, sizes, workdir),
        "history": lambda kind: history.run(kind, sizes),
        "planning": lambda kind: planning.run(kind, sizes),
        "naive": lambda kind: naive.run(kind, sizes, workdir),
        "lag": lambda kind: lag.run(kind, sizes, workdir),
        "load": lambda kind: load.run(kind, sizes, workdir),
    }
    started = datetime.now(UTC)
    info = machine(postgres_engine)
    if postgres_engine is not None:
        postgres_engine.dispose()
    results: dict[str, dict[str, Any]] = {name: {} for name in chosen}
    errors: dict[str, dict[str, str]] = {}
    durations: dict[str, dict[str, float]] = {}
    for name in chosen:
        for kind in kinds:
            print(f"[{args.mode}] {name} on {kind} ...", file=sys.stderr, flush=True)
            begun = time.perf_counter()
            try:
                results[name][kind] = runners[name](kind)
            except Exception:
                errors.setdefault(name, {})[kind] = traceback.format_exc()
                print(traceback.format_exc(), file=sys.stderr)
            took = time.perf_counter() - begun
            durations.setdefault(name, {})[kind] = took
            print(f"[{args.mode}] {name} on {kind}: {took:.1f} s", file=sys.stderr, flush=True)

    found = [figure for figure in figures(results, kinds) if figure.scenario in chosen]
    report = {
        "mode": args.mode,
        "started_at": started.isoformat(),
        "seconds": (datetime.now(UTC) - started).total_seconds(),
        "databases": kinds,
        "scenarios": list(chosen),
        "sizes": vars(sizes),
        "machine": info,
        "durations_seconds": durations,
        "results": results,
        "figures": [figure.as_dict() for figure in found],
        "errors": errors,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(table(found, kinds))
    print(f"\n{args.mode} run, {report['seconds']:.0f} s; results in {args.json}")
    if errors:
        print(f"errors in: {', '.join(sorted(errors))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
