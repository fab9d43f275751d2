"""Requests generated from /openapi.json (schemathesis) meet no 5xx and no schema violation."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reminders.app import create_app
from tests.api.conftest import Api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_no_server_error_and_match_the_schema(
    sqlite_api: Api, mode: GenerationMode
) -> None:
    api = sqlite_api
    patient = api.enroll(ipledge=True)
    known = {"patient_id": patient["id"], "course_id": patient["course_id"]}
    # The schema is served only with API_DOCS=1; the app under test is the same otherwise.
    api.rt.settings = api.rt.settings.model_copy(update={"api_docs": True})
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(api.rt))
    auth = api.auth()
    # Stopping ends the course for good: run it last, so the other course actions reach it.
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda operation: operation.path.endswith("/stop"),
    )
    assert len(operations) >= 16
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            # Point every other generated id at the enrolled patient, so that requests reach
            # the routes' logic and not only their 404s.
            ids = case.path_parameters or {}
            for name, value in known.items():
                if isinstance(ids.get(name), int) and ids[name] % 2:
                    ids[name] = value
            case.call_and_validate(headers=auth, checks=CHECKS)

        try:
            check()
        except Unsatisfiable:
            # An operation without declared inputs has no invalid request to generate.
            assert mode == GenerationMode.NEGATIVE
