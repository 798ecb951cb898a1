"""`kudos serve` against its own OpenAPI description (functions/openapi.json), by schemathesis.

Every operation gets generated requests, valid and invalid (a fixed seed, a bounded number each):
no answer may be a 5xx, and every answer must be one the description lists, with the content type,
headers and body schema it gives. Runs on the real template.yaml, its handlers and segments, on the
embedded DynamoDB, without keys (as `kudos serve` runs by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from functions.openapi_document import DOCUMENT
from kudos.local.serve import serve_in_thread
from tests.conftest import fresh_tables
from tests.functional.conftest import send

schema = schemathesis.openapi.from_path(DOCUMENT)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# A few minutes at most on two loaded cores: about 11 operations x this many examples.
EXAMPLES = 30


@pytest.fixture(scope="module")
def kudos_serve(request: pytest.FixtureRequest) -> Iterator[str]:
    """`kudos serve` on a free port, on the real template and tables of its own."""
    for dynamodb in fresh_tables(request, "moto"):
        with serve_in_thread(settings=dynamodb.settings) as url:
            yield url


@pytest.mark.xdist_group("schemathesis")
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
    database=None,
)
@seed(20261130)
def test_every_answer_conforms(case: Any, kudos_serve: str) -> None:
    case.call_and_validate(base_url=kudos_serve, checks=CHECKS)


def test_the_description_is_served(kudos_serve: str) -> None:
    reply = send("GET", f"{kudos_serve}/v1/openapi.json")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == json.loads(DOCUMENT.read_text())
