"""One error shape for every refusal: `{"message": "field: reason", "detail": [...]}`."""

from __future__ import annotations

import email.message
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reminders.api.schemas import ErrorBody, ErrorItem, ImportReportOut
from reminders.importer import ImportRefused
from reminders.services import Conflict, NotFound
from reminders.validation import InvalidInput

# Documented on every route that can answer them, so the OpenAPI schema matches what is sent.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body cannot be read"},
    401: {"model": ErrorBody, "description": "Missing or unknown API key"},
    404: {"model": ErrorBody, "description": "Not found in this clinic"},
    413: {"model": ErrorBody, "description": "The body is too large"},
    415: {"model": ErrorBody, "description": "Body is not JSON"},
    422: {"model": ErrorBody, "description": "Invalid input; each field is named"},
}
VALIDATION_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "Invalid input; each field is named"},
}
ADMIN_RESPONSE: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "The key is not one of the clinic's admin keys"},
}
CONFLICT_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The course's state does not allow it"},
}


class PayloadTooLarge(Exception):
    """An upload over its size limit, named by its field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.item = ErrorItem(field=field, reason=reason)


def error_response(
    status: int, items: Sequence[ErrorItem], message: str | None = None, **kwargs: Any
) -> JSONResponse:
    if message is None:
        message = "; ".join(
            f"row {item.row}: {item.field}: {item.reason}"
            if item.row
            else f"{item.field}: {item.reason}"
            for item in items
        )
    body = ErrorBody(message=message, detail=list(items))
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, **kwargs
    )


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _validation_items(errors: Sequence[Any]) -> list[ErrorItem]:
    items = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
        kind = error.get("type", "")
        if kind == "json_invalid":
            items.append(ErrorItem(field="body", reason="not valid JSON"))
            continue
        reason = {"extra_forbidden": "unknown field", "missing": "required"}.get(
            kind, str(error.get("msg", "invalid")).removeprefix("Value error, ")
        )
        items.append(ErrorItem(field=".".join(where) or (loc[0] if loc else "body"), reason=reason))
    return items


def install(app: FastAPI) -> None:
    """Register the handlers that turn every refusal into the one error shape."""

    @app.exception_handler(InvalidInput)
    async def invalid_input(_request: Request, exc: InvalidInput) -> JSONResponse:
        return error_response(
            422, [ErrorItem(field=e.field, reason=e.reason) for e in exc.errors], str(exc)
        )

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, [], str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, [ErrorItem(field=exc.field, reason=exc.reason)], str(exc))

    @app.exception_handler(ImportRefused)
    async def import_refused(_request: Request, exc: ImportRefused) -> JSONResponse:
        return error_response(422, ImportReportOut.of(exc.report).errors)

    @app.exception_handler(PayloadTooLarge)
    async def too_large(_request: Request, exc: PayloadTooLarge) -> JSONResponse:
        return error_response(413, [exc.item])

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        content_type = request.headers.get("content-type")
        whole_body = any(tuple(e.get("loc", ())) == ("body",) for e in errors)
        if whole_body and content_type and not _is_json(content_type):
            item = ErrorItem(field="Content-Type", reason="must be application/json")
            return error_response(415, [item])
        return error_response(422, _validation_items(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "body: cannot be read (not UTF-8 JSON)"
        field, separator, reason = message.partition(": ")
        items = [ErrorItem(field=field, reason=reason)] if separator and " " not in field else []
        return error_response(
            exc.status_code, items, message, headers=getattr(exc, "headers", None)
        )
