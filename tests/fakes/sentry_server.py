"""A Sentry-shaped envelope endpoint on loopback: what a real DSN's transport would deliver."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sentry_sdk.envelope import Envelope


class SentryServer:
    """Accepts POST /api/<project>/envelope/ and keeps every envelope it was sent."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.encodings: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self._server.server_address[1]}/1"

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                event for envelope in self.envelopes if (event := envelope.get_event()) is not None
            ]

    def __enter__(self) -> SentryServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":  # sentry-sdk prefers brotli whenever it is installed
                    import brotli

                    body = brotli.decompress(body)
                with server._lock:
                    server.encodings.add(encoding)
                    if encoding in ("", "gzip", "br") and self.path == "/api/1/envelope/":
                        server.envelopes.append(Envelope.deserialize(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: Any) -> None:
                return None  # quiet: the test reads the envelopes, not an access log

        return Handler
