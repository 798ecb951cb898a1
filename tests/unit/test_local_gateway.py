"""kudos/local/gateway.py: what serve, invoke and the demo share between a request and a handler."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kudos.local.gateway import GatewayResult, LocalGateway, missing_http_fields
from kudos.local.routes import load_template

LOCAL_APP = Path(__file__).resolve().parents[1] / "functional" / "local_app" / "template.yaml"


@pytest.fixture(scope="module")
def gateway() -> LocalGateway:
    return LocalGateway(load_template(LOCAL_APP))


def body(result: GatewayResult) -> Any:
    return json.loads(result.response.body)


def test_a_routed_request_reaches_its_function_with_the_route_and_the_clock(gateway: LocalGateway) -> None:
    now = datetime(2026, 11, 20, 18, 3, tzinfo=UTC)
    result = gateway.handle("GET", "/echo/ana", "user_id=u-7", now=now)

    assert result.response.status == 200
    assert result.route_key == "GET /echo/{name}"
    assert result.failure is None
    event = body(result)["event"]
    assert event["queryStringParameters"] == {"user_id": "u-7"}
    assert event["requestContext"]["timeEpoch"] == int(now.timestamp() * 1000)


def test_no_route_is_answered_without_a_function(gateway: LocalGateway) -> None:
    unknown = gateway.handle("GET", "/nowhere")
    wrong_method = gateway.handle("DELETE", "/echo/ana")

    assert (unknown.response.status, body(unknown), unknown.route_key) == (
        404,
        {"message": "Not Found"},
        None,
    )
    assert (wrong_method.response.status, body(wrong_method)) == (405, {"message": "Method Not Allowed"})
    assert ("allow", "GET, POST") in wrong_method.response.headers


def test_a_failing_handler_is_a_bare_500_and_the_failure_says_where(gateway: LocalGateway) -> None:
    result = gateway.handle("GET", "/boom")

    assert (result.response.status, body(result)) == (500, {"message": "Internal Server Error"})
    assert result.failure is not None
    # Where it was raised, frame by frame; not the message, which may quote user ids.
    assert result.failure.startswith("FailingFunction raised RuntimeError\n")
    assert "boom" not in result.failure.splitlines()[0]
    assert 'File "' in result.failure


def test_a_result_api_gateway_rejects_is_a_502_and_the_failure_says_why(gateway: LocalGateway) -> None:
    result = gateway.handle("GET", "/malformed")

    assert result.response.status == 502
    assert result.failure is not None
    assert "API Gateway rejects" in result.failure


@pytest.mark.parametrize(
    ("event", "missing"),
    [
        ({"rawPath": "/v1/segments", "requestContext": {"http": {"method": "GET"}}}, []),
        ({"rawPath": "/v1/segments"}, ["requestContext.http.method"]),
        ({"requestContext": {"http": {}}}, ["rawPath", "requestContext.http.method"]),
        ([], ["rawPath", "requestContext.http.method"]),
    ],
)
def test_missing_http_fields_are_named_dotted(event: object, missing: list[str]) -> None:
    assert missing_http_fields(event) == missing
