"""SQS's side, locally: the event an SQS event source mapping gives a function for a batch of messages,
and what its answer says failed (kudos/local/queues.py drains a queue with them)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

from kudos.local.schedule import ACCOUNT


def sqs_event(bodies: Sequence[str], *, queue: str, region: str = "us-east-1") -> dict[str, Any]:
    """The Lambda event for messages with these bodies taken from queue ``queue`` (its name)."""
    sent = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": sent,
                    "SenderId": ACCOUNT,
                    "ApproximateFirstReceiveTimestamp": sent,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{region}:{ACCOUNT}:{queue}",
                "awsRegion": region,
            }
            for body in bodies
        ]
    }


def received_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One message of a ReceiveMessage answer as Lambda's SQS event writes it."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            name: attributes[name]
            for name in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
            )
            if name in attributes
        },
        "messageAttributes": {
            name: {
                key[0].lower() + key[1:]: value
                for key, value in attribute.items()
                if key in ("StringValue", "BinaryValue", "DataType")
            }
            for name, attribute in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def received_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda invokes an SQS-triggered function with, for messages received from a real
    queue (ReceiveMessage's answer): their ids and receipt handles, as the drainer deletes them."""
    return {"Records": [received_record(message, queue_arn, region) for message in messages]}


def failed_ids(result: Any) -> set[str]:
    """The message ids a ReportBatchItemFailures answer names."""
    if not isinstance(result, dict):
        return set()
    return {
        str(failure.get("itemIdentifier"))
        for failure in result.get("batchItemFailures") or []
        if isinstance(failure, dict)
    }
