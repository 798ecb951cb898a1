"""The API Gateway payload 2.0 event and response mapping that `kudos serve` relies on."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model

from kudos.local.apigw import InvalidLambdaResponse, LambdaContext, build_event, http_response

NOW = datetime(2026, 11, 20, 18, 3, 58, 123000, tzinfo=UTC)


def sample_event(**overrides: object) -> dict:
    arguments: dict = {
        "method": "POST",
        "raw_path": "/v1/segments/top%20users/members",
        "raw_query": "limit=10&tag=a&tag=b&q=x%2By+z&empty=",
        "headers": [
            ("Host", "127.0.0.1:3000"),
            ("User-Agent", "curl/8.5"),
            ("Content-Type", "application/json"),
            ("X-Multi", "one"),
            ("x-multi", "two"),
            ("Cookie", "a=1; b=2"),
        ],
        "body": b'{"k": "v"}',
        "route_key": "POST /v1/segments/{name}/members",
        "path_parameters": {"name": "top users"},
        "source_ip": "10.0.0.7",
        "server_port": 3000,
        "now": NOW,
    }
    arguments.update(overrides)
    return build_event(**arguments)


def test_event_has_the_payload_2_0_shape() -> None:
    event = sample_event()

    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/segments/{name}/members"
    assert event["rawPath"] == "/v1/segments/top%20users/members"
    assert event["rawQueryString"] == "limit=10&tag=a&tag=b&q=x%2By+z&empty="
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["pathParameters"] == {"name": "top users"}
    assert event["body"] == '{"k": "v"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/v1/segments/top%20users/members",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.0.0.7",
        "userAgent": "curl/8.5",
    }
    assert context["routeKey"] == event["routeKey"]
    assert context["stage"] == "$default"
    assert context["domainName"] == "127.0.0.1"
    assert context["accountId"].isdigit()
    assert context["apiId"]
    assert context["requestId"]
    assert context["time"] == "20/Nov/2026:18:03:58 +0000"
    assert context["timeEpoch"] == int(NOW.timestamp() * 1000)


def test_headers_are_lower_cased_and_repeats_joined_with_commas() -> None:
    headers = sample_event()["headers"]

    assert headers["x-multi"] == "one,two"
    assert headers["content-type"] == "application/json"
    assert headers["host"] == "127.0.0.1:3000"
    assert headers["x-forwarded-for"] == "10.0.0.7"
    assert headers["x-forwarded-port"] == "3000"
    # Cookies move to their own list.
    assert "cookie" not in headers
    assert all(name == name.lower() for name in headers)


def test_query_parameters_are_decoded_and_repeats_joined_with_commas() -> None:
    assert sample_event()["queryStringParameters"] == {"limit": "10", "tag": "a,b", "q": "x+y z", "empty": ""}


def test_absent_parts_are_left_out_as_api_gateway_does() -> None:
    event = sample_event(method="GET", raw_query="", headers=[], body=b"", path_parameters={})

    for key in ("cookies", "queryStringParameters", "pathParameters", "body"):
        assert key not in event
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["userAgent"] == ""


def test_binary_bodies_are_base64_encoded() -> None:
    event = sample_event(headers=[("content-type", "application/octet-stream")], body=b"\x00\xff")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"

    not_utf8 = sample_event(headers=[("content-type", "text/plain")], body=b"\xff")
    assert not_utf8["isBase64Encoded"] is True


def test_powertools_reads_the_event() -> None:
    event = sample_event()

    model = APIGatewayProxyEventV2Model.model_validate(event)
    assert model.requestContext.stage == "$default"
    assert model.requestContext.http.method == "POST"
    wrapped = APIGatewayProxyEventV2(event)
    assert wrapped.path == "/v1/segments/top%20users/members"
    assert wrapped.query_string_parameters["tag"] == "a,b"
    assert wrapped.path_parameters == {"name": "top users"}
    assert json.loads(wrapped.decoded_body) == {"k": "v"}
    assert wrapped.cookies == ["a=1", "b=2"]


def test_a_proxy_result_becomes_the_http_response() -> None:
    response = http_response(
        {
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-count": 3},
            "cookies": ["a=1; Path=/"],
            "body": '{"ok": true}',
        }
    )

    assert response.status == 201
    assert ("content-type", "application/json") in response.headers
    assert ("x-count", "3") in response.headers
    assert ("set-cookie", "a=1; Path=/") in response.headers
    assert response.body == b'{"ok": true}'


def test_a_base64_body_is_decoded_and_no_body_is_empty() -> None:
    encoded = base64.b64encode(b"\x00\x01").decode()
    assert http_response({"statusCode": 200, "body": encoded, "isBase64Encoded": True}).body == b"\x00\x01"
    assert http_response({"statusCode": 204}).body == b""


@pytest.mark.parametrize("result", [{"items": [1, 2]}, "hello", [1, 2], None])
def test_a_result_without_status_code_is_a_json_200(result: object) -> None:
    response = http_response(result)

    assert response.status == 200
    assert ("content-type", "application/json") in response.headers
    assert json.loads(response.body) == result


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "abc"},
        {"statusCode": 700},
        {"statusCode": True},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "headers": {"x": {"nested": 1}}},
        {"statusCode": 200, "cookies": "a=1"},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
        {"not json": object()},
    ],
)
def test_a_result_api_gateway_cannot_use_is_refused(result: object) -> None:
    with pytest.raises(InvalidLambdaResponse):
        http_response(result)


def test_lambda_context_counts_down_from_the_timeout() -> None:
    context = LambdaContext(function_name="SdkIngestFunction", memory_limit_in_mb=512, timeout_seconds=2)

    first = context.get_remaining_time_in_millis()
    time.sleep(0.01)
    assert 0 < context.get_remaining_time_in_millis() < first <= 2000
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:SdkIngestFunction"
    assert context.aws_request_id != LambdaContext(function_name="x").aws_request_id
    assert context.log_group_name == "/aws/lambda/SdkIngestFunction"


def test_powertools_logger_accepts_the_context(capsys: pytest.CaptureFixture[str]) -> None:
    logger = Logger(service="kudos-test")

    @logger.inject_lambda_context
    def handler(event: dict, context: object) -> str:
        logger.info("hello")
        return "done"

    context = LambdaContext(function_name="MetricsFunction", memory_limit_in_mb=1024)
    assert handler({}, context) == "done"
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["function_name"] == "MetricsFunction"
    assert record["function_memory_size"] == 1024
    assert record["function_request_id"] == context.aws_request_id
