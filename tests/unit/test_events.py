"""events/*.json are what API Gateway (HTTP API, payload 2.0) and EventBridge send the functions.

They feed `sam local invoke -e` and the handler tests, so each must be a well-formed event for a route
or schedule that template.yaml declares.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import yaml

from kudos.store.send_queue import queued_send

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events").glob("*.json"))


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !GetAtt...) as plain values: only the structure matters."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@cache
def declared() -> tuple[frozenset[str], int]:
    """The template's HTTP routes ('METHOD /path') and how many schedules it has."""
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)  # a SafeLoader
    routes: set[str] = set()
    schedules = 0
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes.add(f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}")
            elif event["Type"] == "Schedule":
                schedules += 1
    return frozenset(routes), schedules


def load(path: Path) -> dict[str, Any]:
    event = json.loads(path.read_text())
    assert isinstance(event, dict)
    return event


def is_http(event: dict[str, Any]) -> bool:
    return "routeKey" in event


def test_there_are_events() -> None:
    assert EVENTS


def test_every_route_has_an_event() -> None:
    routes, schedules = declared()
    events = [load(path) for path in EVENTS]
    # ANY routes are only there to answer 405: one example of those is enough.
    named = {route for route in routes if not route.startswith("ANY ")}
    assert named <= {e["routeKey"] for e in events if is_http(e)}
    assert any(e["routeKey"].startswith("ANY ") for e in events if is_http(e))
    assert schedules == 0 or any(not is_http(e) for e in events)


def route_pattern(path_template: str) -> re.Pattern[str]:
    """/v1/segments/{name}/members -> a regex with a named group per path parameter."""
    parts = re.split(r"\{(\w+)\}", path_template)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(regex)


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_event_is_well_formed(path: Path) -> None:
    event = load(path)
    if is_http(event):
        check_http_event(event)
    elif "Records" in event:
        check_queue_event(event)
    else:
        check_scheduled_event(event)


def check_queue_event(event: dict[str, Any]) -> None:
    """An SQS batch as Lambda's event source mapping delivers it, from a queue of template.yaml:
    each body a sweep part (SweepPartsQueue) or a queued send (SendQueue)."""
    queues = {record["eventSourceARN"] for record in event["Records"]}
    assert len(queues) == 1, "one batch comes from one queue"
    (queue,) = queues
    assert queue.startswith("arn:aws:sqs:")
    assert declared_queue(queue) in ("SweepPartsQueue", "SendQueue")
    for record in event["Records"]:
        assert record["eventSource"] == "aws:sqs"
        body = json.loads(record["body"])
        if declared_queue(queue) == "SweepPartsQueue":
            assert set(body) == {"at", "part", "parts"}
            assert 0 <= body["part"] < body["parts"]
        else:
            assert set(body) == {"user", "send_id", "at"}
            send = queued_send(record["body"])
            assert send.send_id
            assert send.at > 0
        assert int(record["attributes"]["SentTimestamp"]) > 0


def declared_queue(arn: str) -> str:
    """The queue of the template an SQS ARN names (CloudFormation names it <stack>-<LogicalId>-<id>)."""
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)  # a SafeLoader
    queues = [
        name for name, resource in template["Resources"].items() if resource["Type"] == "AWS::SQS::Queue"
    ]
    name = arn.rsplit(":", 1)[-1]
    (found,) = [queue for queue in queues if f"-{queue}-" in f"-{name}-"]
    return found


def check_http_event(event: dict[str, Any]) -> None:
    assert event["version"] == "2.0"
    routes, _ = declared()
    route_key = event["routeKey"]
    assert route_key in routes, f"{route_key} is not a route of template.yaml"
    method, path_template = route_key.split(" ", 1)

    # Path and path parameters.
    match = route_pattern(path_template).fullmatch(event["rawPath"])
    assert match, f"rawPath {event['rawPath']} does not match {path_template}"
    assert event.get("pathParameters", {}) == match.groupdict()

    # Query string: API Gateway gives both the raw string and the parsed parameters (absent when none).
    query = dict(parse_qsl(event["rawQueryString"], keep_blank_values=True))
    assert event.get("queryStringParameters", {}) == query

    headers = event["headers"]
    assert all(name == name.lower() for name in headers), "HTTP API lower-cases header names"
    assert headers["x-api-key"]
    assert headers["user-agent"]

    context = event["requestContext"]
    for field in ("accountId", "apiId", "domainName", "requestId", "time", "timeEpoch"):
        assert context[field], field
    assert context["routeKey"] == route_key
    assert context["stage"] == "$default"
    assert context["http"]["method"] == method or method == "ANY"
    assert context["http"]["path"] == event["rawPath"]
    assert context["http"]["protocol"].startswith("HTTP/")
    assert context["http"]["sourceIp"]
    assert context["http"]["userAgent"] == headers["user-agent"]
    assert headers["host"] == context["domainName"]
    received = datetime.strptime(context["time"], "%d/%b/%Y:%H:%M:%S %z")
    assert abs(received.timestamp() * 1000 - context["timeEpoch"]) < 1000
    assert datetime(2026, 11, 1, tzinfo=UTC) <= received <= datetime(2026, 12, 31, tzinfo=UTC)

    assert event["isBase64Encoded"] is False
    if "body" not in event:
        assert context["http"]["method"] in ("GET", "HEAD", "DELETE", "OPTIONS")
    else:
        assert headers["content-type"].startswith("application/json")
        body = event["body"]
        assert isinstance(body, str)
        assert isinstance(json.loads(body), dict)
        assert int(headers["content-length"]) == len(body.encode())


def check_scheduled_event(event: dict[str, Any]) -> None:
    _, schedules = declared()
    assert schedules, "a scheduled event but template.yaml has no Schedule"
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["version"] == "0"
    # A schedule sends {}; an operator asks for a full sweep with {"full": true} (events/sweep_full.json).
    assert event["detail"] in ({}, {"full": True})
    assert datetime.fromisoformat(event["time"].replace("Z", "+00:00")).tzinfo is not None
    assert all(arn.startswith("arn:aws:events:") for arn in event["resources"])
