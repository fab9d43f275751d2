"""The clinic's web pages: sign-in, patients, enrolment, spreadsheet upload, timelines, the
inbox of patients' replies and the clinic's settings.

Server-rendered HTML forms under /clinic, calling the same services as the API.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from reminders.config import get_settings
from reminders.runtime import Runtime
from reminders.web import auth, course, overview, patients, replies, settings
from reminders.web.pages import STATIC, install_handlers
from reminders.web.patients import IMPORT_PATH
from reminders.web.security import PREFIX, add_sessions

__all__ = ["IMPORT_PATH", "install"]


def install(app: FastAPI, runtime: Runtime | None) -> None:
    """Add the pages, their static files and the session cookie to the app."""
    # Without a runtime the app builds one from the environment later; the settings are the
    # same ones it will read.
    add_sessions(app, runtime.settings if runtime is not None else get_settings())
    install_handlers(app)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="clinic-static")
    # The course module ends with the catch-all 404 page: it goes last.
    for module in (auth, overview, patients, replies, settings, course):
        app.include_router(module.router)
