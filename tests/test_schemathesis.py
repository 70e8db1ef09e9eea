"""schemathesis against the app's own OpenAPI schema, in process (ASGI): no 5xx, every answer as documented.

Hypothesis draws requests from the schema (valid and invalid ones) for every operation; a modest number of
examples keeps the run short.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from movierec.serve import create_app, load_settings

from serve_fixtures import build_run

EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    run_dir = build_run(tmp_path_factory.mktemp("schemathesis") / "run")
    app = create_app(load_settings(run_dir=run_dir, admin_token="schemathesis-token-0123456789"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return schemathesis.openapi.from_asgi("/openapi.json", app)


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema(api_schema: Any, mode: GenerationMode) -> None:
    """Requests drawn from the schema (``POSITIVE``) and against it (``NEGATIVE``), per operation.

    (schemathesis's own ``@schema.parametrize`` needs the app at import time, or a lazy fixture loader that
    this pytest version breaks; drawing cases with Hypothesis here does the same work.)"""
    found = operations(api_schema)
    assert len(found) >= 8
    for operation in found:
        raw = operation.definition.raw
        if mode is GenerationMode.NEGATIVE and not raw.get("parameters") and "requestBody" not in raw:
            continue  # nothing to get wrong (GET /health)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        check()


def test_schema_declares_the_error_answers(tmp_path: Path) -> None:
    """Every operation that takes input documents its 422 with the service's own error body."""
    app = create_app(load_settings(run_dir=build_run(tmp_path / "run")))
    document = app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if operation.get("parameters") or operation.get("requestBody"):
                error = operation["responses"]["422"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorOut"}, (method, path)
