"""The worker's metrics: a real tick against the loopback Twilio, scraped over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from reminders.cli import app as cli
from reminders.config import ConfigError, Settings, get_settings
from reminders.dispatch import Dispatcher
from reminders.metrics import WorkerMetrics
from reminders.metrics_http import MetricsServer, worker_metrics_server
from reminders.runtime import Runtime
from reminders.worker import make_dispatcher, plan_pass
from tests.conftest import NOW, make_runtime
from tests.fakes.twilio_server import TwilioServer
from tests.helpers import Clock, add_clinic, add_patient

TOKEN = "worker-metrics-token-for-tests"
SENT, INVALID, FLAKY = "+12125550101", "+12125550102", "+12125550103"
NAMES = ("Ana", "Bea", "Cruz", "Riverside")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Worker:
    rt: Runtime
    dispatcher: Dispatcher
    server: MetricsServer
    twilio: TwilioServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/metrics"

    def scrape(self) -> tuple[str, Samples]:
        response = httpx.get(self.url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }
        return response.text, samples


@pytest.fixture
def worker(engine) -> Iterator[Worker]:  # type: ignore[no-untyped-def]
    with TwilioServer() as twilio:
        rt = make_runtime(
            engine,
            sms_backend="twilio",
            twilio_account_sid=twilio.account_sid,
            twilio_auth_token=twilio.auth_token,
            twilio_from_number="+15005550006",
            twilio_base_url=twilio.url,
            twilio_mps=200,
            metrics_token=TOKEN,
            worker_metrics_port=0,  # any free port: several test runs share the machine
        )
        dispatcher = make_dispatcher(rt, worker_id="metrics-test")
        dispatcher.clock = Clock(NOW)
        server = worker_metrics_server(rt.settings, dispatcher.metrics.registry)
        assert server is not None
        try:
            yield Worker(rt, dispatcher, server, twilio)
        finally:
            server.close()
            dispatcher.close()


def labelled(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_the_worker_scrape_shows_sends_errors_by_code_and_provider_latency(worker) -> None:
    clinic = add_clinic(worker.rt, NOW)
    for name, phone in zip(NAMES, (SENT, INVALID, FLAKY), strict=False):
        add_patient(worker.rt, clinic, NOW, first_name=name, phone=phone)
    worker.twilio.fail_for(INVALID, "21211")
    worker.twilio.fail_for(FLAKY, "500")
    plan_pass(worker.rt, NOW, metrics=worker.dispatcher.metrics)
    report = worker.dispatcher.tick()
    # An invalid number holds its messages until staff fix it; a 500 is tried again.
    assert (report.sent, report.held, report.retried) == (1, 1, 1)

    text, samples = worker.scrape()
    sends = "reminders_sends_total"
    assert labelled(samples, sends, channel="sms", outcome="sent") == 1
    assert labelled(samples, sends, channel="sms", outcome="held") == 1
    assert labelled(samples, sends, channel="sms", outcome="retried") == 1
    assert labelled(samples, sends, channel="sms", outcome="failed") == 0  # declared, at 0
    errors = "reminders_provider_errors_total"
    assert labelled(samples, errors, channel="sms", code="21211") == 1
    assert labelled(samples, errors, channel="sms", code="20500") == 1
    latency = "reminders_provider_request_seconds"
    assert labelled(samples, f"{latency}_count", channel="sms") == 3
    assert labelled(samples, f"{latency}_bucket", channel="sms", le="+Inf") == 3
    assert labelled(samples, f"{latency}_sum", channel="sms") > 0
    assert labelled(samples, "reminders_send_lag_seconds_count", channel="sms") == 1
    assert labelled(samples, "reminders_claimed_batch_rows") == 3
    assert labelled(samples, "reminders_sends_in_flight") == 0
    assert labelled(samples, "reminders_planner_pass_seconds_count") == 1
    assert_no_personal_label(samples)
    assert "2125550" not in text


def assert_no_personal_label(samples: Samples) -> None:
    """No label value is a phone number, an email address or a patient's or clinic's name."""
    for name, labels in samples:
        for key, value in labels:
            assert not re.search(r"\d{7,}", value.replace(".", "")), (name, key, value)
            assert "@" not in value, (name, key, value)
            assert not any(word.lower() in value.lower() for word in NAMES), (name, key, value)


def test_the_worker_scrape_needs_the_bearer_token(worker) -> None:
    assert httpx.get(worker.url).status_code == 401
    wrong = httpx.get(worker.url, headers={"Authorization": "Bearer not-it"})
    assert (wrong.status_code, wrong.headers["www-authenticate"]) == (401, 'Bearer realm="metrics"')
    other = httpx.get(
        worker.url.replace("/metrics", "/"), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert other.status_code == 404
    assert worker.server.server.server_address[0] == "127.0.0.1"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_no_worker_metrics_server_without_a_port() -> None:
    assert worker_metrics_server(settings(metrics_token=TOKEN), WorkerMetrics().registry) is None


def test_a_worker_metrics_port_without_a_token_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^WORKER_METRICS_PORT: needs METRICS_TOKEN"):
        worker_metrics_server(settings(worker_metrics_port=0), WorkerMetrics().registry)


def test_a_taken_port_is_refused_naming_the_setting(worker) -> None:
    taken = settings(metrics_token=TOKEN, worker_metrics_port=worker.server.port)
    with pytest.raises(ConfigError, match=r"^WORKER_METRICS_PORT: cannot listen on 127\.0\.0\.1"):
        worker_metrics_server(taken, WorkerMetrics().registry)


def test_each_dispatcher_has_a_registry_of_its_own(runtime) -> None:
    first, second = make_dispatcher(runtime), make_dispatcher(runtime)
    assert first.metrics.registry is not second.metrics.registry


def test_the_worker_command_without_a_metrics_token_stops_in_one_line(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'worker.db'}")
    monkeypatch.setenv("SECRET_KEY", "worker-metrics-secret-for-tests")
    monkeypatch.setenv("WORKER_METRICS_PORT", "9109")
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["worker"], catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: WORKER_METRICS_PORT: needs METRICS_TOKEN set (the scrape's bearer token)"
    )
