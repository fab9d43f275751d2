"""A cap on request bodies, so an endless upload cannot fill the web process's memory."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reminders.api.errors import error_response
from reminders.api.schemas import ErrorItem


class BodyTooLarge(HTTPException):
    """Raised while reading; an HTTPException, so it is answered in the API's error shape."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"body: larger than {limit} bytes")


class BodyLimit:
    """Refuse bodies over `limit` bytes (or a path's own limit): by Content-Length at once,
    and while reading for a body sent without one."""

    def __init__(self, app: ASGIApp, *, limit: int, paths: Mapping[str, int]) -> None:
        self.app = app
        self.limit = limit
        self.paths = dict(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"], self.limit)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > limit:
            item = ErrorItem(field="body", reason=f"larger than {limit} bytes")
            await error_response(413, [item])(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)
