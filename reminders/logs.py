"""Logging: text for people, JSON lines for production; every line masked by one processor."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from reminders.config import Settings
from reminders.privacy import scrub

# Set once per process and read from every thread: APScheduler's jobs and the send pool run
# in threads of their own, which start with an empty contextvars context.
_process_context: dict[str, Any] = {}

# Keys a LogRecord can carry that only repeat the event: uvicorn's coloured copy of its
# message, and what a formatter of another handler may have left on a shared record.
_RECORD_LEFTOVERS = ("color_message", "message", "asctime")


class AccessLogWithoutQuery(logging.Filter):
    """Drop the query string from uvicorn's access lines.

    A query can hold what must never be logged: a staff search (`?q=` a patient's name or an
    email whose `%40` the masking would not see as one), or a key someone put in the URL.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, path?query, version,
        # status).
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, separator, _query = args[2].partition("?")
            record.args = (*args[:2], path + ("?***" if separator else ""), *args[3:])
        return True


_ACCESS_FILTER = AccessLogWithoutQuery()


def bind_worker(worker_id: str) -> None:
    """Name this process's worker on every line it logs, from any thread."""
    _process_context["worker_id"] = worker_id


@contextmanager
def log_context(*, outbox_id: int | None = None, course_id: int | None = None) -> Iterator[None]:
    """Add the outbox row and course being worked on to every line logged inside the block."""
    values = {"outbox_id": outbox_id, "course_id": course_id}
    with structlog.contextvars.bound_contextvars(
        **{key: value for key, value in values.items() if value is not None}
    ):
        yield


def setup_logging(settings: Settings) -> None:
    """Configure the root logger (and structlog) once for this process."""
    stream = sys.stderr
    shared = _context_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Processor
    if _wants_json(settings.log_format, stream):
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Records of the standard library (ours, uvicorn, SQLAlchemy, APScheduler) get the
        # same fields as structlog's own events before the common chain below.
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.ExtraAdder(),
            _drop_record_leftovers,
            _record_stack,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            # Tracebacks become text here, before masking: an exception message or the SQL
            # parameters it quotes may hold a phone number or an email address.
            structlog.processors.format_exc_info,
            mask_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # uvicorn may have given its loggers handlers of their own, or stopped them propagating
    # (its access_log=False does): every line goes through the one chain above.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    root.setLevel(settings.log_level.upper())
    logging.getLogger("uvicorn.access").addFilter(_ACCESS_FILTER)  # once: filters are a set
    # Library loggers can print request URLs and payloads (twilio logs the full request).
    for noisy in ("twilio", "twilio.http_client", "urllib3", "apscheduler", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A tick still running when the next is due is skipped by design (max_instances=1).
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


def mask_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask contacts and link tokens in every field; redact fields that must never be logged."""
    return scrub(event_dict)


def _context_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_process_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _add_process_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    for key, value in _process_context.items():
        event_dict.setdefault(key, value)
    return event_dict


def _drop_record_leftovers(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    for key in _RECORD_LEFTOVERS:
        event_dict.pop(key, None)
    return event_dict


def _record_stack(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # A LogRecord's stack_info is already text; StackInfoRenderer would capture a new stack,
    # the formatter's own, instead of the caller's.
    stack = event_dict.pop("stack_info", None)
    if isinstance(stack, str):
        event_dict["stack"] = stack
    return event_dict


def _wants_json(log_format: str, stream: TextIO) -> bool:
    """JSON lines unless asked for text, or left on auto with a person at the terminal."""
    if log_format == "auto":
        return not stream.isatty()
    return log_format == "json"
