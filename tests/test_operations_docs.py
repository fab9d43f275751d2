"""docs/: the alert rules and the dashboard name only metrics the service exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from reminders.metrics import WebMetrics, WorkerMetrics

DOCS = Path(__file__).resolve().parent.parent / "docs"
NAME = re.compile(r"\breminders_[a-z_]+")


def exposed(runtime) -> set[str]:  # type: ignore[no-untyped-def]
    """Every sample name the worker's and the web's registries can give, observed or not."""
    registries = (WorkerMetrics().registry, WebMetrics(lambda: runtime.engine).registry)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    return {
        family.name + suffix
        for registry in registries
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def test_the_alert_rules_use_only_metrics_that_exist(runtime) -> None:
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    alerts = {rule["alert"]: rule["expr"] for rule in rules["groups"][0]["rules"]}
    assert {"RemindersOverdue", "RemindersNoWorkerHeartbeat", "RemindersFailedTodayRising"} <= set(
        alerts
    )
    assert "RemindersRepliesUnreadOverADay" in alerts
    names = {name for expr in alerts.values() for name in NAME.findall(expr)}
    assert names and names <= exposed(runtime)


def test_the_dashboard_is_json_and_uses_only_metrics_that_exist(runtime) -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    names = {name for expr in exprs for name in NAME.findall(expr)}
    assert names and names <= exposed(runtime)


def test_operations_md_documents_every_metric(runtime) -> None:
    text = (DOCS / "operations.md").read_text()
    for name in exposed(runtime):
        base = re.sub(r"_(bucket|count|sum|created)$", "", name)
        assert base in text or base.removesuffix("_total") in text, name
