"""SMS through Twilio's Messages API, with provider errors translated to DeliveryError."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Collection
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from reminders.channels.base import DeliveryError, OutgoingMessage, Receipt
from reminders.config import ConfigError, Settings
from reminders.pacing import RateLimiter
from reminders.privacy import mask_phone

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
# The client may also build regional or edge hosts (api.dublin.ie1.twilio.com).
_TWILIO_HOST = re.compile(r"^https://api(?:\.[\w-]+)*\.twilio\.com")

# Errors that say something about the recipient, so retrying cannot help. Short names only:
# Twilio's own messages quote the phone number, and reasons end up in logs and the database.
_PERMANENT = {
    21211: "invalid To number",
    21214: "To number cannot be reached",
    21408: "region not enabled",
    21612: "To number not reachable from this sender",
    21614: "To is not a mobile number",
}
_OPTED_OUT = 21610
# Of those, the ones that say the number is wrong (21408 is the sender's account setting).
UNREACHABLE_CODES = frozenset({21211, 21214, 21612, 21614})
# Requests leave the limiter within the rate, but reach Twilio after a network and scheduling
# delay that varies; pacing a little under the limit keeps their arrivals under it too.
_PACING_HEADROOM = 0.9
_MAX_RETRY_AFTER = 86400.0
_TOO_MANY_REQUESTS = 20429
_AUTHENTICATE = 20003


class _RoutedHttpClient(TwilioHttpClient):
    """TwilioHttpClient that talks to `base_url` and keeps the last response's headers.

    Each instance serves one thread (see TwilioSMS._client), so `last_headers` is that
    thread's own.
    """

    def __init__(self, *, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        # The twilio client builds absolute api.twilio.com URLs and has no base-URL setting.
        self._base_url = None if base_url.rstrip("/") == TWILIO_API else base_url.rstrip("/")
        self.last_headers: dict[str, str] = {}

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        base = self._base_url
        if base is not None:
            url = _TWILIO_HOST.sub(lambda _: base, url, count=1)
        self.last_headers = {}
        response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        # TwilioRestException drops the response headers, and Retry-After lives there.
        self.last_headers = dict(response.headers or {})
        return response

    # The stock loggers print query parameters (a `To` number) at INFO; keep them out.
    def log_request(self, kwargs: dict[str, Any]) -> None:
        pass

    def log_response(self, status_code: int, response: Any) -> None:
        pass

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


class TwilioSMS:
    """Sends SMS through Twilio; one client per thread, paced by segments per second."""

    name = "sms"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str | None = None,
        from_number: str | None = None,
        base_url: str = TWILIO_API,
        timeout: float = 15.0,
        mps: float = 1.0,
    ) -> None:
        if bool(messaging_service_sid) == bool(from_number):
            raise ValueError("give exactly one of messaging_service_sid and from_number")
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.messaging_service_sid = messaging_service_sid
        self.from_number = from_number
        self.base_url = base_url
        self.timeout = timeout
        # One bucket per sender: Twilio's MPS limit is per number or service and counts segments.
        self.limiter = RateLimiter(mps * _PACING_HEADROOM)
        # requests.Session is not documented as thread-safe, and the dispatcher sends from a
        # pool; so each thread gets its own Client, kept in a list that close() empties.
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[tuple[Client, _RoutedHttpClient]] = []
        self._generation = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioSMS:
        """Build from the environment, naming the first missing variable."""
        if not settings.twilio_account_sid:
            raise ConfigError("TWILIO_ACCOUNT_SID is not set")
        if settings.twilio_auth_token is None or not settings.twilio_auth_token.get_secret_value():
            raise ConfigError("TWILIO_AUTH_TOKEN is not set")
        if not settings.twilio_messaging_service_sid and not settings.twilio_from_number:
            raise ConfigError("set TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER")
        # A messaging service picks the sender itself; when both are set, it wins.
        service = settings.twilio_messaging_service_sid or None
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            messaging_service_sid=service,
            from_number=None if service else settings.twilio_from_number,
            base_url=settings.twilio_base_url,
            timeout=settings.twilio_timeout,
            mps=settings.twilio_mps,
        )

    def _client(self) -> tuple[Client, _RoutedHttpClient]:
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == self._generation:
            return held[1]
        http = _RoutedHttpClient(base_url=self.base_url, timeout=self.timeout)
        client = Client(self.account_sid, self._auth_token, http_client=http)
        # The client builds (and on first use imports) its resource classes lazily; doing it
        # here keeps that work out of the paced section, where it would bunch requests.
        _ = client.messages
        pair = (client, http)
        with self._lock:
            self._clients.append(pair)
            self._local.held = (self._generation, pair)
        return pair

    def send(self, message: OutgoingMessage) -> Receipt:
        """Hand one SMS to Twilio; raise DeliveryError saying whether to retry."""
        client, http = self._client()
        params: dict[str, Any] = {"to": message.to, "body": message.body}
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        else:
            params["from_"] = self.from_number
        if message.status_callback:
            params["status_callback"] = message.status_callback
        if message.validity_seconds:
            params["validity_period"] = message.validity_seconds

        self.limiter.acquire(max(1, message.segments))
        try:
            created = client.messages.create(**params)
        except (TwilioRestException, TwilioServiceException) as exc:
            error = _classify(exc.status, exc.code, http.last_headers)
        except requests.Timeout:
            error = DeliveryError("twilio timeout", permanent=False, code="timeout")
        except requests.ConnectionError:
            error = DeliveryError("twilio connection error", permanent=False, code="connection")
        except (requests.RequestException, TwilioException, ValueError) as exc:
            # ValueError: an answer that is not Twilio's JSON, e.g. a proxy's error page.
            error = DeliveryError(
                f"twilio error {type(exc).__name__}", permanent=False, code="other"
            )
        else:
            # The dispatcher logs the send at INFO: one line a message is enough.
            log.debug(
                "sms accepted for %s (outbox %s, %s)",
                mask_phone(message.to),
                message.outbox_id,
                created.sid,
            )
            return Receipt(provider_id=created.sid)
        log.warning(
            "sms to %s failed (outbox %s): %s, %s",
            mask_phone(message.to),
            message.outbox_id,
            error.reason,
            "permanent" if error.permanent else "will retry",
        )
        raise error

    def find_sent(self, *, to: str, body: str | Collection[str], since: datetime) -> str | None:
        """The SID of a message with exactly this body (or one of these) sent to `to` since
        `since`.

        Used after a crash between handing a message over and recording it. The list is
        filtered by recipient only: Twilio sets date_sent when the carrier takes a message, so
        a date filter would miss one still queued. Twilio lists newest first, so the pages are
        read only back to `since`.
        """
        client, _ = self._client()
        aware_since = since.replace(tzinfo=UTC) if since.tzinfo is None else since
        bodies = {body} if isinstance(body, str) else set(body)
        for found in client.messages.stream(to=to, page_size=50):
            created = found.date_created
            if created is not None and created < aware_since:
                return None  # newest first: everything further is older still
            if found.body in bodies:
                return found.sid
        return None

    def close(self) -> None:
        """Close every thread's HTTP session; the next send opens a fresh one."""
        with self._lock:
            clients, self._clients = self._clients, []
            self._generation += 1
        for _, http in clients:
            http.close()


def _classify(status: int | None, code: int | None, headers: dict[str, str]) -> DeliveryError:
    """Translate an HTTP status and Twilio error code; the code is named, nothing else."""
    status = int(status or 0)
    code = int(code or status)
    where = f"twilio {code} (HTTP {status})"
    named = str(code)
    if code == _OPTED_OUT:
        return DeliveryError(
            f"{where}: recipient unsubscribed", permanent=True, opted_out=True, code=named
        )
    if status == 429 or code == _TOO_MANY_REQUESTS or status >= 500:
        label = "rate limited" if status == 429 or code == _TOO_MANY_REQUESTS else "server error"
        return DeliveryError(
            f"{where}: {label}", permanent=False, retry_after=_retry_after(headers), code=named
        )
    if status == 401 or code == _AUTHENTICATE:
        # Bad or rotated credentials say nothing about the recipient: failing every due
        # message for good would lose them, so retry while an operator fixes the settings.
        return DeliveryError(
            f"{where}: authentication failed, check TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN",
            permanent=False,
            code=named,
        )
    # The number itself cannot receive: its messages wait until staff fix it (never an opt-out).
    unreachable = code in UNREACHABLE_CODES
    label = _PERMANENT.get(code, "rejected")
    return DeliveryError(f"{where}: {label}", permanent=True, unreachable=unreachable, code=named)


def _retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from a Retry-After header, given as seconds or as an HTTP date."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    # A day at most: beyond that the message is stale anyway, and the retry policy gives up.
    return min(max(0.0, seconds), _MAX_RETRY_AFTER)
