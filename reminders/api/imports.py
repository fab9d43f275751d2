"""POST /v1/imports: a CSV upload (a multipart `file` field or a text/csv body, at most
5 MiB) enrolled row by row."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from reminders.api.errors import ERROR_RESPONSES, PayloadTooLarge
from reminders.api.schemas import ErrorBody, ImportReportOut
from reminders.deps import CallerDep, ContextDep, RuntimeDep
from reminders.importer import MAX_BYTES, PARTIAL_DEFAULT, import_file
from reminders.validation import InvalidInput

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
MULTIPART = "multipart/form-data"
# Room for the multipart boundaries and headers around a file of the largest allowed size.
MAX_REQUEST_BYTES = MAX_BYTES + 64 * 1024
# The server stops reading an upload past this (a multipart upload is spooled before it can
# be measured); below it, read_upload names the file as too large.
HARD_LIMIT_BYTES = 4 * MAX_BYTES
TOO_LARGE = f"larger than {MAX_BYTES // (1024 * 1024)} MiB"

IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}
IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The multipart body cannot be read"},
    413: {"model": ErrorBody, "description": "The file is larger than 5 MiB"},
    415: {"model": ErrorBody, "description": "Neither text/csv nor multipart/form-data"},
    422: {"model": ErrorBody, "description": "Invalid file or rows; each row and field named"},
}


async def read_upload(request: Request) -> bytes:
    """The uploaded file's bytes; 413 when too large, 415 for another content type."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_REQUEST_BYTES:
        raise PayloadTooLarge("file", TOO_LARGE)
    if media == MULTIPART:
        data = await _multipart_file(request)
    elif media in CSV_MEDIA_TYPES:
        data = await _body(request)
    else:
        raise HTTPException(
            status_code=415,
            detail="Content-Type: must be text/csv or multipart/form-data with a `file` field",
        )
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge("file", TOO_LARGE)
    return data


async def _body(request: Request) -> bytes:
    # Read in chunks and stop early, so a body without Content-Length cannot fill memory.
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise PayloadTooLarge("file", TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


async def _multipart_file(request: Request) -> bytes:
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if upload is None:
            raise InvalidInput.one("file", "required: send the CSV as the `file` field")
        if isinstance(upload, str):  # a plain text part instead of a file part
            return upload.encode("utf-8")
        return await upload.read(MAX_BYTES + 1)


@router.post(
    "/imports",
    status_code=201,
    tags=["patients"],
    openapi_extra=IMPORT_BODY,
    responses=IMPORT_RESPONSES,
)
def create_import(
    caller: CallerDep,  # first: the key is checked before the upload is read
    data: Annotated[bytes, Depends(read_upload)],
    rt: RuntimeDep,
    ctx: ContextDep,
    partial: Annotated[
        bool, Query(description="Enroll the valid rows even when others are invalid")
    ] = PARTIAL_DEFAULT,
) -> ImportReportOut:
    """Enroll every row of a CSV file (a `file` upload, or a text/csv body).

    By default the file is all-or-nothing: one invalid row refuses the whole file with a
    report naming each row and field, and nothing is written. With `partial=true` the valid
    rows are enrolled and the invalid ones reported, like `reminders import`. The file is
    checked whole before anything is written, then written in short transactions (with the
    audit trail's entries), so other requests never wait on a large import.
    """
    report = import_file(
        rt.engine,
        clinic_id=caller.clinic.id,  # type: ignore[arg-type]
        data=data,
        source="import",
        ctx=ctx,
        partial=partial,
        actor=caller.actor,
    )
    return ImportReportOut.of(report)
