"""Bare baselines: the same requests to the same server, with none of our code in the way."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bench.provider import Provider

# Twilio form field -> keyword of client.messages.create
_KEYWORDS = {
    "To": "to",
    "Body": "body",
    "From": "from_",
    "MessagingServiceSid": "messaging_service_sid",
    "StatusCallback": "status_callback",
    "ValidityPeriod": "validity_period",
}


def _run_threads(
    requests_fields: Sequence[dict[str, str]],
    concurrency: int,
    make_sender: Callable[[], Callable[[dict[str, str]], None]],
) -> float:
    """Send every request from `concurrency` threads pulling from one list; seconds taken."""
    lock = threading.Lock()
    position = 0
    errors: list[BaseException] = []

    def work() -> None:
        nonlocal position
        try:
            send = make_sender()
            while True:
                with lock:
                    if position >= len(requests_fields):
                        return
                    fields = requests_fields[position]
                    position += 1
                send(fields)
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"baseline send failed: {errors[0]!r}") from errors[0]
    return took


def post_raw(
    provider: Provider, requests_fields: Sequence[dict[str, str]], *, concurrency: int
) -> float:
    """requests.Session per thread, POSTing the form fields with basic auth; seconds taken."""
    url = f"{provider.url}/2010-04-01/Accounts/{provider.account_sid}/Messages.json"
    auth = (provider.account_sid, provider.auth_token)

    def make_sender() -> Callable[[dict[str, str]], None]:
        session = requests.Session()
        session.auth = auth

        def send(fields: dict[str, str]) -> None:
            response = session.post(url, data=fields, timeout=30)
            if response.status_code != 201:
                raise RuntimeError(f"HTTP {response.status_code}")

        return send

    return _run_threads(requests_fields, concurrency, make_sender)


class _Loopback(TwilioHttpClient):
    """The stock HTTP client, pointed at the loopback server instead of api.twilio.com."""

    def __init__(self, base: str) -> None:
        super().__init__(timeout=30)
        self._base = base

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        url = re.sub(r"^https://api\.twilio\.com", self._base, url, count=1)
        return super().request(method, url, *args, **kwargs)


def post_twilio_client(
    provider: Provider, requests_fields: Sequence[dict[str, str]], *, concurrency: int
) -> float:
    """The official twilio client alone (one per thread), creating the same messages."""

    def make_sender() -> Callable[[dict[str, str]], None]:
        client = Client(
            provider.account_sid, provider.auth_token, http_client=_Loopback(provider.url)
        )

        def send(fields: dict[str, str]) -> None:
            client.messages.create(**{_KEYWORDS[k]: v for k, v in fields.items()})

        return send

    return _run_threads(requests_fields, concurrency, make_sender)
