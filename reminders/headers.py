"""The security headers every response carries, JSON, pages, files and errors alike.

A route may set its own Content-Security-Policy (the clinic pages are stricter, the API
documentation needs its scripts); every other header here is the same everywhere.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No script runs and nothing loads from elsewhere. Inline styles are allowed because the
# unsubscribe pages carry their few lines of CSS inline; the clinic pages forbid even that.
DEFAULT_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Two years, the value browsers' preload lists ask for.
HSTS = "max-age=63072000; includeSubDomains"


def security_headers(*, https: bool) -> dict[str, str]:
    """The headers for every response; HSTS only when the service is reached over https."""
    headers = {
        # Answers hold patient data (JSON, pages) or act for a patient (unsubscribe links).
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": DEFAULT_CSP,
        # Unsubscribe links carry a token: never pass an address on to another site.
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = HSTS
    return headers


class SecurityHeaders:
    """Add the security headers to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
