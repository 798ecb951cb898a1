"""functions/http.py: the one mapping of domain errors to statuses, and answers for routes it lacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import kudos.core.errors
from functions.http import ERROR_STATUSES, error_response
from kudos.core.clock import fixed_clock
from kudos.core.errors import KudosError, SegmentRulesError
from kudos.core.settings import Settings
from kudos.local.apigw import LambdaContext
from kudos.runtime import Services, install, reset
from kudos.store.dynamo import Store

EVENTS = Path(__file__).resolve().parents[2] / "events"


def domain_errors() -> list[type[KudosError]]:
    return [
        value
        for value in vars(kudos.core.errors).values()
        if isinstance(value, type) and issubclass(value, KudosError)
    ]


@pytest.mark.parametrize("error_class", domain_errors(), ids=lambda cls: cls.__name__)
def test_every_domain_error_has_its_own_status(error_class: type[KudosError]) -> None:
    assert error_class in ERROR_STATUSES


def test_broken_segment_rules_are_a_500_that_says_why() -> None:
    response = error_response(SegmentRulesError("the deployed segment rules do not compile"))

    assert response.status_code == 500
    assert response.body == {"message": "the deployed segment rules do not compile"}


@pytest.fixture
def offline_services() -> Any:
    # Routing answers need the settings (for keys) but never reach DynamoDB.
    settings = Settings()
    install(Services(settings=settings, store=Store(settings), clock=fixed_clock(0.0)))
    yield
    reset()


def invoke(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    result = handler(event, LambdaContext(function_name="test"))
    return result["statusCode"], result["headers"], json.loads(result["body"])


def test_an_event_for_another_function_names_the_function_that_serves_it(offline_services: Any) -> None:
    from functions.metrics import handler

    event = json.loads((EVENTS / "sessions.json").read_text())
    status, _, body = invoke(handler, event)

    assert status == 404
    assert body == {"message": "POST /v1/sessions is served by SdkIngestFunction, not by this function"}


def test_a_wrong_method_is_a_405_naming_the_methods_of_the_route(offline_services: Any) -> None:
    from functions.sdk_ingest import handler

    event = json.loads((EVENTS / "method_not_allowed.json").read_text())
    status, headers, body = invoke(handler, event)

    assert status == 405
    assert headers["Allow"] == "POST"
    assert body == {
        "message": f"{event['requestContext']['http']['method']} is not allowed on /v1/sessions; use POST"
    }
