"""Serving the metrics: the bearer token both processes ask for, the worker's own small HTTP
server, and the web process's per-request timing."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from urllib.parse import urlparse

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reminders.config import ConfigError, Settings
from reminders.metrics import WebMetrics

log = logging.getLogger(__name__)

UNAUTHORIZED = "Authorization: send `Authorization: Bearer <METRICS_TOKEN>`"
CHALLENGE = 'Bearer realm="metrics"'
# A client may send any word as a method; only these become label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries exactly this bearer token (constant time)."""
    scheme, _, sent = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())


class _TokenMetricsHandler(MetricsHandler):
    """prometheus_client's handler, behind the metrics bearer token, at /metrics only."""

    token: str = ""

    def do_GET(self) -> None:
        if urlparse(self.path).path != "/metrics":
            self._answer(404, "Not Found")
        elif not bearer_matches(self.headers.get("Authorization"), self.token):
            self._answer(401, UNAUTHORIZED, challenge=True)
        else:
            super().do_GET()

    def _answer(self, status: int, text: str, *, challenge: bool = False) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if challenge:
            self.send_header("WWW-Authenticate", CHALLENGE)
        self.end_headers()
        self.wfile.write(body)


@dataclass
class MetricsServer:
    """The worker's metrics endpoint, answering from a thread of its own."""

    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(
    registry: CollectorRegistry, *, host: str, port: int, token: str
) -> MetricsServer:
    """Serve `registry` at http://host:port/metrics to requests with the bearer token."""
    handler = type(
        "WorkerMetricsHandler", (_TokenMetricsHandler,), {"registry": registry, "token": token}
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)


def worker_metrics_server(settings: Settings, registry: CollectorRegistry) -> MetricsServer | None:
    """The worker's metrics server when WORKER_METRICS_PORT is set; None when it is not."""
    if settings.worker_metrics_port is None:
        return None
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not token:
        raise ConfigError(
            "WORKER_METRICS_PORT: needs METRICS_TOKEN set (the scrape's bearer token)"
        )
    try:
        server = serve_metrics(
            registry,
            host=settings.worker_metrics_host,
            port=settings.worker_metrics_port,
            token=token,
        )
    except OSError as exc:
        raise ConfigError(
            f"WORKER_METRICS_PORT: cannot listen on {settings.worker_metrics_host}:"
            f"{settings.worker_metrics_port} ({exc.strerror or exc})"
        ) from None
    log.info("metrics served on http://%s:%d/metrics", settings.worker_metrics_host, server.port)
    return server


class RequestMetrics:
    """Count and time every HTTP request by its route template (never its path: a path can
    hold an unsubscribe token or an id)."""

    def __init__(self, app: ASGIApp, *, metrics: WebMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_keeping_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_keeping_status)
        finally:
            # The router leaves the route it matched in the scope.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.request(
                method=method,
                route=route,
                status=status,
                seconds=time.perf_counter() - started,
            )
