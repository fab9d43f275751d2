"""`reminders web` serves the app with uvicorn on $PORT (8000 by default), on every interface."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from reminders.cli import app
from reminders.config import get_settings


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: dict[str, Any] = {}

    def run(application: Any, **kwargs: Any) -> None:
        calls.update(kwargs, app=application)

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'web.db'}")
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setenv("SECRET_KEY", "web-command-secret-for-tests")
    get_settings.cache_clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield calls
    root.handlers[:], root.level = handlers, level  # the command set up logging for its process
    get_settings.cache_clear()


def test_web_listens_on_port_8000_on_every_interface_by_default(served: dict) -> None:
    result = CliRunner().invoke(app, ["web"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("0.0.0.0", 8000)
    assert isinstance(served["app"], FastAPI)


def test_web_listens_on_the_port_in_the_environment(
    served: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "5123")
    CliRunner().invoke(app, ["web"], catch_exceptions=False)
    assert served["port"] == 5123
