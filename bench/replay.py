"""A real boto3 DynamoDB client whose Scans are answered from recorded HTTP responses, not a server.

Everything a client does runs as usual (validation, signing, events, retries, parsing or not),
except the network: a ``before-send`` handler (as moto does) returns the next recorded response.
So two scan paths compared on it get the very same bytes, and their difference is client work.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from kudos.local.dynamodb import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
from kudos.store.tables import CLIENT_MAX_ATTEMPTS

JSON_10 = "application/x-amz-json-1.0"


@dataclass(frozen=True)
class Recorded:
    status_code: int
    headers: dict[str, str]
    body: bytes


def page_response(body: dict[str, Any]) -> Recorded:
    return Recorded(200, {"content-type": JSON_10, "x-amzn-requestid": "replayed"}, json.dumps(body).encode())


def error_response(status: int, code: str, message: str = "replayed error") -> Recorded:
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
    return Recorded(
        status, {"content-type": JSON_10, "x-amzn-requestid": "replayed"}, json.dumps(body).encode()
    )


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Any:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


@dataclass
class Replayer:
    """Answers each Scan with the next response, cycling; keeps the requests' bodies."""

    responses: Sequence[Recorded]
    requests: list[dict[str, Any]] = field(default_factory=list)
    _next: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.requests.append(json.loads(request.body or b"{}"))
        recorded = self.responses[self._next]
        self._next = (self._next + 1) % len(self.responses)
        return AWSResponse(request.url, recorded.status_code, dict(recorded.headers), _Raw(recorded.body))


def replaying_client(responses: Sequence[Recorded]) -> tuple[Any, Replayer]:
    """A client configured as kudos's own (adaptive retries), answered by a ``Replayer``."""
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://replayed.invalid",
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
        config=Config(retries={"max_attempts": CLIENT_MAX_ATTEMPTS, "mode": "adaptive"}),
    )
    replayer = Replayer(responses)
    client.meta.events.register("before-send.dynamodb.Scan", replayer)
    return client, replayer
