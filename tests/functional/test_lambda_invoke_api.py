"""`kudos serve` answers the Lambda Invoke API (campaigns.md "Locally"), as `sam local start-lambda`
does: boto3's `lambda` client (or `aws lambda invoke --endpoint-url`) runs any function of the
template on an event of its choosing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from kudos.cli import main
from kudos.local.serve import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60),
    )


def invoke(client: Any, name: str, event: Any, **options: Any) -> tuple[dict[str, Any], Any]:
    reply = client.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **options)
    raw = reply["Payload"].read()
    return reply, json.loads(raw) if raw else None


@pytest.fixture
def served_stack(dynamodb) -> Iterator[str]:
    """The real template, served on the test's tables."""
    with serve_in_thread(settings=dynamodb.settings) as url:
        yield url


def test_a_scheduled_function_runs_on_the_event_given(local_api: str) -> None:
    reply, result = invoke(lambda_client(local_api), "TickFunction", {"detail": {"n": 1}})

    assert reply["StatusCode"] == 200
    assert "FunctionError" not in reply
    assert reply["ExecutedVersion"] == "$LATEST"
    assert result == {"received": {"detail": {"n": 1}}, "function_name": "TickFunction"}


def test_an_http_function_runs_on_a_payload_2_event(local_api: str) -> None:
    event = json.loads((EVENTS / "sessions.json").read_text())
    _, result = invoke(lambda_client(local_api), "EchoFunction", event)

    assert result["statusCode"] == 200
    assert json.loads(result["body"])["function_name"] == "EchoFunction"


def test_a_function_is_named_by_arn_too(local_api: str) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:TickFunction"
    _, result = invoke(lambda_client(local_api), arn, {})

    assert result["function_name"] == "TickFunction"


def test_a_handler_that_raises_is_lambdas_unhandled_error(local_api: str) -> None:
    reply, result = invoke(lambda_client(local_api), "FailingFunction", {"rawPath": "/boom"})

    assert reply["StatusCode"] == 200
    assert reply["FunctionError"] == "Unhandled"
    assert result["errorType"] == "RuntimeError"
    assert result["errorMessage"] == "boom"
    assert isinstance(result["stackTrace"], list)


def test_an_unknown_function_is_resource_not_found(local_api: str) -> None:
    client = lambda_client(local_api)

    with pytest.raises(client.exceptions.ResourceNotFoundException) as raised:
        invoke(client, "NoSuchFunction", {})
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "NoSuchFunction" in raised.value.response["Error"]["Message"]


def test_an_unknown_qualifier_is_resource_not_found(local_api: str) -> None:
    client = lambda_client(local_api)

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        invoke(client, "TickFunction", {}, Qualifier="prod")


def test_event_and_dry_run_invocations(local_api: str) -> None:
    client = lambda_client(local_api)

    event_reply, _ = invoke(client, "TickFunction", {}, InvocationType="Event")
    dry_reply, _ = invoke(client, "TickFunction", {}, InvocationType="DryRun")

    assert event_reply["StatusCode"] == 202
    assert dry_reply["StatusCode"] == 204


def test_a_body_that_is_not_json_is_a_400(local_api: str, http) -> None:
    reply = http("POST", f"{local_api}/2015-03-31/functions/TickFunction/invocations", b"{nope")

    assert reply.status == 400
    assert reply.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert "json" in reply.json()["message"]


def test_the_sweep_runs_through_the_invoke_api_and_is_recorded(served_stack: str, http) -> None:
    event = json.loads((EVENTS / "sweep_full.json").read_text())
    reply, result = invoke(lambda_client(served_stack), "SweepFunction", event)

    assert reply["StatusCode"] == 200
    assert "FunctionError" not in reply
    assert result["kind"] == "full"
    assert result["changes"] == 0
    # The clock is the later of the wall clock and the event's time: now, here.
    last = http("GET", f"{served_stack}/v1/segments").json()["last_sweep"]
    assert last["at"] == result["at"]


def test_kudos_invoke_runs_the_sweep_on_its_sample_event(
    moto_endpoint: str, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "invoke",
            "SweepFunction",
            "--event",
            str(EVENTS / "sweep_steady.json"),
            "--endpoint-url",
            moto_endpoint,
        ]
    )

    out, err = capfd.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["kind"] in ("full", "steady")
    assert "kudos invoke: SweepFunction" in err


def test_kudos_invoke_runs_the_sender_on_its_sample_event(
    moto_endpoint: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # An SQS batch of one send: on fresh tables there is no such send, which is no failure (the
    # user may have been deleted since), and the batch reports none.
    code = main(
        ["invoke", "SendFunction", "--event", str(EVENTS / "send.json"), "--endpoint-url", moto_endpoint]
    )

    out, err = capfd.readouterr()
    assert code == 0, err
    assert json.loads(out) == {"batchItemFailures": []}
    assert "kudos invoke: SendFunction (functions.send.handler)" in err
