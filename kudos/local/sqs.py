"""SQS's side, locally: the event an SQS event source mapping gives a function for a batch of messages."""

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
