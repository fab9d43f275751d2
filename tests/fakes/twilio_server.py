"""A Twilio-shaped Messages API on loopback, with faults a test can script."""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import secrets
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

API = "/2010-04-01"
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/.]+))?\.json$")

# Twilio's wording for the errors tests script; several echo the number, as Twilio's do, so a
# test can prove the channel never copies a provider message into its logs.
_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21214: (400, "'To' phone number {to} cannot be reached."),
    21408: (400, "Permission to send an SMS has not been enabled for the region of {to}."),
    21602: (400, "Message body is required."),
    21603: (400, "The 'From' phone number or a MessagingServiceSid is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient {to}"),
    21612: (400, "The 'To' phone number {to} is not currently reachable via SMS."),
    21614: (400, "'To' number {to} is not a valid mobile number"),
}
_KIND_CODES = {"429": 20429, "500": 20500, "503": 20503}

_GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = "^{}\\[~]|€\f"


def count_segments(body: str) -> int:
    """Segments Twilio would bill: GSM-7 160/153, otherwise UCS-2 70/67."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in body):
        length = sum(2 if c in _GSM7_EXTENDED else 1 for c in body)
        single, multi = 160, 153
    else:
        length = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if length <= single else -(-length // multi)


@dataclass(frozen=True)
class Fault:
    """One scripted failure: an HTTP error, a Twilio error code, "drop" or "slow"."""

    kind: str
    retry_after: float | str | None = None  # seconds, or an HTTP date as Twilio may send
    delay: float = 1.0  # for "slow": seconds before answering normally


@dataclass
class ReceivedMessage:
    """A message the fake accepted, with every form field as sent."""

    sid: str
    fields: dict[str, str]
    received_monotonic: float
    received_at: datetime  # naive UTC
    auth: tuple[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def to(self) -> str:
        return self.fields["To"]

    @property
    def body(self) -> str:
        return self.fields["Body"]


class _HTTPServer(ThreadingHTTPServer):
    # Join handler threads on close, after stop() has cut their connections.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or a stop() that cut the line is part of the script.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class TwilioServer:
    """A loopback server for `POST/GET /2010-04-01/Accounts/{sid}/Messages.json`."""

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-auth-token",
        fault_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.latency = 0.0
        self.fault_rate = fault_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._next_faults: deque[Fault] = deque()
        self._faults_for: dict[str, Fault] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.request_count = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> TwilioServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        # Keep-alive connections would hold their handler threads until the client hangs up.
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join()
        self._httpd = None

    def __enter__(self) -> TwilioServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_port}"

    # -- what was received -----------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    # -- scripted faults -------------------------------------------------------------------

    def fail_next(self, kind: str, count: int = 1, **kw: Any) -> None:
        """The next `count` sends fail: "429", "500", "503", "drop", "slow" or a code."""
        with self._lock:
            self._next_faults.extend(Fault(kind, **kw) for _ in range(count))

    def fail_for(self, to: str, kind: str, **kw: Any) -> None:
        """Every send to `to` fails with `kind` until clear_faults()."""
        with self._lock:
            self._faults_for[to] = Fault(kind, **kw)

    def clear_faults(self) -> None:
        with self._lock:
            self._next_faults.clear()
            self._faults_for.clear()
            self.fault_rate = 0.0

    def _pick_fault(self, to: str | None) -> Fault | None:
        with self._lock:
            if to is not None and to in self._faults_for:
                return self._faults_for[to]
            if self._next_faults:
                return self._next_faults.popleft()
            if self.fault_rate and self._random.random() < self.fault_rate:
                return Fault(self._random.choice(["429", "500"]), retry_after=1)
            return None

    # -- the API ---------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        # An Event wait rather than sleep, so stop() does not wait out a slow answer.
        if seconds > 0:
            self._stopping.wait(seconds)

    def _record(
        self, fields: dict[str, str], auth: tuple[str, str], arrived: float
    ) -> ReceivedMessage:
        message = ReceivedMessage(
            sid="SM" + secrets.token_hex(16),
            fields=fields,
            received_monotonic=arrived,
            received_at=datetime.now(UTC).replace(tzinfo=None, microsecond=0),
            auth=auth,
        )
        with self._lock:
            self._messages.append(message)
        return message

    def message_json(self, message: ReceivedMessage, *, status: str = "sent") -> dict[str, Any]:
        created = format_datetime(message.received_at.replace(tzinfo=UTC), usegmt=True)
        uri = f"{API}/Accounts/{self.account_sid}/Messages/{message.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": message.body,
            "date_created": created,
            "date_updated": created,
            # The fake hands every message to the carrier at once: queued in the POST answer,
            # sent with a date_sent in every later read.
            "date_sent": None if status == "queued" else created,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": message.fields.get("From"),
            "messaging_service_sid": message.fields.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(count_segments(message.body)),
            "price": None,
            "price_unit": "USD",
            "sid": message.sid,
            "status": status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": message.to,
            "uri": uri,
        }


def error_json(code: int, *, to: str = "") -> tuple[int, dict[str, Any]]:
    """Twilio's error body for `code`, and the HTTP status it comes with."""
    status, text = _ERRORS.get(code, (400, f"Error {code}"))
    return status, {
        "code": code,
        "message": text.format(to=to),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _parse_date(value: str) -> datetime:
    if "T" in value:
        return datetime.strptime(value.rstrip("Z"), "%Y-%m-%dT%H:%M:%S")
    return datetime.strptime(value, "%Y-%m-%d")


class _Handler(BaseHTTPRequestHandler):
    fake: TwilioServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the twilio client's session expects
    timeout = 30

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line carries phone numbers; tests read `messages` instead

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_error(
        self, code: int, *, to: str = "", headers: dict[str, str] | None = None
    ) -> None:
        status, payload = error_json(code, to=to)
        self._send_json(status, payload, headers)

    def _authorized(self, account: str) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        fake = self.fake
        if (user, password, account) != (fake.account_sid, fake.auth_token, fake.account_sid):
            return None
        return user, password

    def _route(self) -> tuple[re.Match[str], tuple[str, str]] | None:
        with self.fake._lock:
            self.fake.request_count += 1
        self.fake._wait(self.fake.latency)
        match = _PATH.match(urlsplit(self.path).path)
        if match is None:
            self._send_error(20404)
            return None
        auth = self._authorized(match["account"])
        if auth is None:
            self._send_error(20003)
            return None
        return match, auth

    def do_POST(self) -> None:
        # Stamped on arrival, before latency: rate limits are judged by when requests come in.
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        routed = self._route()
        if routed is None:
            return
        match, auth = routed
        if match["sid"]:
            self._send_error(20404)
            return
        fields = {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}
        to = fields.get("To", "")

        fault = self.fake._pick_fault(to)
        if fault is not None:
            if fault.kind == "drop":
                # Hang up without a word, as a load balancer does mid-request.
                self.close_connection = True
                return
            if fault.kind == "slow":
                self.fake._wait(fault.delay)
            else:
                code = _KIND_CODES.get(fault.kind) or int(fault.kind)
                headers = {}
                if isinstance(fault.retry_after, str):
                    headers["Retry-After"] = fault.retry_after
                elif fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                elif fault.kind == "429":
                    headers["Retry-After"] = "1"
                self._send_error(code, to=to, headers=headers)
                return

        if not to:
            self._send_error(21604)
        elif not fields.get("Body"):
            self._send_error(21602)
        elif ("From" in fields) == ("MessagingServiceSid" in fields):
            # Twilio itself lets From win over a service; the fake insists on exactly one so a
            # test notices a channel that sends both.
            self._send_error(21603)
        else:
            message = self.fake._record(fields, auth, arrived)
            self._send_json(201, self.fake.message_json(message, status="queued"))

    def do_GET(self) -> None:
        routed = self._route()
        if routed is None:
            return
        match, _ = routed
        messages = self.fake.messages
        if match["sid"]:
            found = [m for m in messages if m.sid == match["sid"]]
            if found:
                self._send_json(200, self.fake.message_json(found[0]))
            else:
                self._send_error(20404)
            return
        self._send_json(200, self._page(match, messages))

    def _page(self, match: re.Match[str], messages: list[ReceivedMessage]) -> dict[str, Any]:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        selected = []
        for m in messages:
            sent = m.received_at
            if "To" in query and m.to != query["To"]:
                continue
            if "From" in query and m.fields.get("From") != query["From"]:
                continue
            # Twilio reads DateSent> and DateSent>= alike: on or after; DateSent< on or before.
            after = query.get("DateSent>") or query.get("DateSent>=")
            if after and sent < _parse_date(after):
                continue
            before = query.get("DateSent<") or query.get("DateSent<=")
            if before and sent > _parse_date(before) + (
                timedelta(days=1) if "T" not in before else timedelta(0)
            ):
                continue
            if "DateSent" in query and sent.date() != _parse_date(query["DateSent"]).date():
                continue
            selected.append(m)
        selected.sort(key=lambda m: m.received_monotonic, reverse=True)

        size = int(query.get("PageSize", 50))
        page = int(query.get("Page", 0))
        chunk = selected[page * size : (page + 1) * size]
        base = f"{API}/Accounts/{match['account']}/Messages.json"

        def page_uri(number: int) -> str:
            return base + "?" + urlencode({**query, "Page": number, "PageSize": size})

        has_next = (page + 1) * size < len(selected)
        return {
            "end": page * size + max(0, len(chunk) - 1),
            "first_page_uri": page_uri(0),
            "messages": [self.fake.message_json(m) for m in chunk],
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": page_uri(page - 1) if page else None,
            "start": page * size,
            "uri": page_uri(page),
        }
