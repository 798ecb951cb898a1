"""The Lambda Invoke API, locally: `POST /2015-03-31/functions/{FunctionName}/invocations`.

What `sam local start-lambda` answers, so that `aws lambda invoke --endpoint-url ...` and boto3's
`lambda` client run any function of template.yaml on demand (the sweep, the rollup, an HTTP handler
on a payload 2.0 event). The body is the event; the answer is the handler's result as JSON (200), or
Lambda's error JSON with `X-Amz-Function-Error: Unhandled` when the handler raised (still 200, as
Lambda answers), or a 404 ResourceNotFoundException for a function the template lacks.

It runs through the gateway's Lambda runner: one event at a time with everything else. A
RequestResponse invocation returns once what it queued is done too (``settle``: on `kudos serve`,
the sends a sweep queued, taken by SendFunction), so that a test or a script that invokes the sweep
finds its pushes made when the call returns (campaigns.md "Locally").
"""

from __future__ import annotations

import json
import re
import traceback
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from kudos.local.apigw import HttpResponse
from kudos.local.gateway import LocalLambda
from kudos.local.routes import Function, Template
from kudos.local.schedule import ACCOUNT

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
INVOKE_ROUTE = "POST /2015-03-31/functions/{FunctionName}/invocations"
# arn:aws:lambda:us-east-1:123456789012:function:Name[:qualifier], 123456789012:function:Name, Name[:qualifier]
_FUNCTION_NAME = re.compile(
    r"^(?:arn:[\w-]+:lambda:[\w-]+:\d{12}:function:|\d{12}:function:)?(?P<name>[\w-]+)(?::(?P<qualifier>[\w$-]+))?$"
)


def is_invoke_path(raw_path: str) -> bool:
    return INVOKE_PATH.match(raw_path) is not None


class LocalLambdaApi:
    """Lambda's Invoke API for the functions of one template, on the gateway's Lambda runner."""

    def __init__(
        self, template: Template, runtime: LocalLambda, *, settle: Callable[[], object] | None = None
    ) -> None:
        self.template = template
        self.runtime = runtime
        self.settle = settle

    def handle(
        self, method: str, raw_path: str, raw_query: str, headers: dict[str, str], body: bytes
    ) -> HttpResponse:
        """One request to an invocations path (``is_invoke_path``); ``headers`` with lower-case names."""
        request_id = str(uuid.uuid4())
        match = INVOKE_PATH.match(raw_path)
        if match is None:
            return _error(404, "ResourceNotFoundException", "unknown Lambda API path", request_id)
        if method.upper() != "POST":
            return _error(405, "MethodNotAllowedException", f"{method} is not allowed: POST", request_id)
        qualifier = parse_qs(raw_query).get("Qualifier", [None])[-1]
        function = self._function(unquote(match.group("name")), qualifier)
        if function is None:
            arn = f"arn:aws:lambda:{self.runtime.region}:{ACCOUNT}:function:{unquote(match.group('name'))}"
            return _error(404, "ResourceNotFoundException", f"Function not found: {arn}", request_id)
        try:
            event = json.loads(body) if body.strip() else {}
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return _error(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {error}",
                request_id,
            )
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type == "DryRun":
            return _response(204, b"", request_id)
        if invocation_type not in ("RequestResponse", "Event"):
            return _error(
                400,
                "InvalidParameterValueException",
                f"X-Amz-Invocation-Type: {invocation_type!r} is not RequestResponse, Event or DryRun",
                request_id,
            )
        payload, failed = self.invoke(function, event)
        if self.settle is not None and invocation_type == "RequestResponse":
            self.settle()
        if invocation_type == "Event":
            # Lambda queues the event and answers at once; here it has already run (one at a time).
            return _response(202, b"", request_id)
        extra = [("x-amz-function-error", "Unhandled")] if failed else []
        return _response(200, payload, request_id, extra)

    def invoke(self, function: Function, event: Any) -> tuple[bytes, bool]:
        """The handler's result as JSON bytes, and whether it failed (then Lambda's error JSON)."""
        try:
            result = self.runtime.invoke(function, event)
        except Exception as error:
            return _failure(type(error).__name__, str(error), traceback.format_tb(error.__traceback__)), True
        try:
            return json.dumps(result).encode(), False
        except (TypeError, ValueError) as error:
            return _failure("Runtime.MarshalError", f"Unable to marshal response: {error}", []), True

    def _function(self, name: str, qualifier: str | None) -> Function | None:
        """The function ``name`` (a name or an ARN) names; only $LATEST exists locally."""
        parsed = _FUNCTION_NAME.match(name)
        if parsed is None or {parsed.group("qualifier"), qualifier} - {None, "$LATEST"}:
            return None
        return self.template.functions.get(parsed.group("name"))


def _failure(error_type: str, message: str, stack: list[str]) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": stack}).encode()


def _response(
    status: int, body: bytes, request_id: str, extra: list[tuple[str, str]] | None = None
) -> HttpResponse:
    headers = [
        ("content-type", "application/json"),
        ("x-amzn-requestid", request_id),
        ("x-amz-executed-version", "$LATEST"),
        *(extra or []),
    ]
    return HttpResponse(status, headers, body)


def _error(status: int, error_type: str, message: str, request_id: str) -> HttpResponse:
    # Lambda's error body, with the type also in x-amzn-ErrorType (what botocore reads).
    body = json.dumps({"Type": "User", "message": message}).encode()
    return HttpResponse(
        status,
        [
            ("content-type", "application/json"),
            ("x-amzn-requestid", request_id),
            ("x-amzn-errortype", error_type),
        ],
        body,
    )
