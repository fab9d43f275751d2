"""Builds what every process needs once: settings, engine, care plan, renderer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from reminders import careplan as careplan_module
from reminders.careplan import CarePlan
from reminders.config import Settings, get_settings
from reminders.db import make_engine
from reminders.render import Renderer
from reminders.services import Context


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    careplan: CarePlan
    renderer: Renderer

    def context(self, now: datetime) -> Context:
        return Context(
            careplan=self.careplan,
            now=now,
            horizon=timedelta(days=self.settings.plan_horizon_days),
        )


def load_careplan(settings: Settings, renderer: Renderer) -> CarePlan:
    """The clinic's care plan (or the default), checked against the templates on disk."""
    return careplan_module.load(
        settings.careplan_path,
        missing_templates=lambda template, short: renderer.missing_templates(template, short=short),
    )


def build(settings: Settings | None = None) -> Runtime:
    settings = settings or get_settings()
    renderer = Renderer(settings.templates_path)
    return Runtime(
        settings=settings,
        engine=make_engine(settings.database_url),
        careplan=load_careplan(settings, renderer),
        renderer=renderer,
    )
