"""The `reminders` command: one module per concept, registered on the app in base.py."""

from __future__ import annotations

import logging

from reminders.cli import (  # noqa: F401  (registers the commands)
    clinics,
    courses,
    operations,
    patients,
    reach,
    replies,
    staff,
)
from reminders.cli.base import app


def main() -> None:
    logging.captureWarnings(True)
    app()


__all__ = ["app", "main"]
