"""The published OpenAPI schema is the API (issue 10 §9): schemathesis generates requests from
`/api/schema/` for every operation — authenticated as an Organization owner with an API token,
bounded examples, a fixed seed — and every check must pass (no 5xx, documented statuses,
responses matching their schemas, schema-valid input accepted, invalid input refused).

`make fuzz` runs this file alone (`FUZZ=1`; skipped otherwise, it takes minutes), a step of
`.ci/run`; `FUZZ_EXAMPLES` sets the examples per operation, `FUZZ_ONLY` (comma-separated labels
like `POST /api/v1/orgs/`) limits the run to those operations."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from accounts.services import create_api_token

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        os.environ.get("FUZZ") != "1", reason="the schema fuzz runs with `make fuzz`"
    ),
]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


@pytest.fixture
def api_schema(cast: dict[str, Any]) -> Iterator[Any]:
    """The schema, read from the WSGI application; like Django's test client, requests do not
    close the test database's connection when they finish."""
    from django.core import signals
    from django.db import close_old_connections

    from catalyst_portal.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(cast: dict[str, Any]) -> str:
    return create_api_token(user=cast["owner"], name="fuzz", days=5)[1]


def _fuzz(operation: Any, mode: GenerationMode, token: str) -> str | None:
    """Run the operation's examples in one generation mode; the first failure, or None."""
    failure: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # a fixed seed: the same requests every run
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"})

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # every check failure, per operation
        failure.append(f"{operation.label} [{mode.value}]: {exc}".split("\n\nReproduce")[0])
    return failure[0] if failure else None


def test_api_matches_its_schema(api_schema: Any, token: str) -> None:
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 30
    only = [o for o in os.environ.get("FUZZ_ONLY", "").split(",") if o]  # "POST /api/v1/orgs/"
    operations = [o for o in operations if not only or o.label in only]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if problem := _fuzz(operation, mode, token):
                failures.append(problem)
    assert not failures, f"{len(failures)} operations fail:\n" + "\n\n".join(failures)
