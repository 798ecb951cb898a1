"""Handlers of the test stack in template.yaml beside this file (imported through its CodeUri)."""

from __future__ import annotations

import json
import os
from typing import Any

from kudos.core.settings import get_settings
from kudos.local.dynamodb import dynamodb_client


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Everything the handler was given, so tests can check the event and context."""
    print("echo was called")  # kudos invoke must keep this off stdout
    body = {
        "event": event,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "environment": {
            name: os.environ.get(name)
            for name in sorted(os.environ)
            if name.startswith(("LOCAL_APP_", "KUDOS_"))
        },
    }
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-served-by": context.function_name},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": json.dumps(body),
    }


def bare(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Payload 2.0 lets a handler return any JSON: API Gateway makes it a 200.
    return {"bare": True}


def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["rawPath"] == "/malformed":
        return {"statusCode": 200, "body": {"not": "a string"}}
    raise RuntimeError("boom")


def put_user(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Writes through the settings the environment gives, as the real handlers do."""
    settings = get_settings()
    client = dynamodb_client(settings.dynamodb_endpoint_url, region=settings.region)
    user_id = event["pathParameters"]["user_id"]
    client.put_item(TableName=settings.users_table, Item={"pk": {"S": f"U#u:{user_id}"}, "sk": {"S": "P"}})
    return {"statusCode": 201, "body": json.dumps({"table": settings.users_table, "user_id": user_id})}


def tick(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"received": event, "function_name": context.function_name}


# The bodies of every SQS batch jobs() was given, in order (tests of the local event source mapping).
JOBS_SEEN: list[list[str]] = []


def jobs(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS-triggered handler with partial batch failures: a body "fail" fails alone, "raise"
    fails the whole invocation."""
    bodies = [record["body"] for record in event["Records"]]
    JOBS_SEEN.append(bodies)
    if "raise" in bodies:
        raise RuntimeError("the batch failed")
    failed = [record["messageId"] for record in event["Records"] if record["body"] == "fail"]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
