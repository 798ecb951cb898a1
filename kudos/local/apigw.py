"""API Gateway HTTP API (payload format 2.0) and the Lambda runtime, as seen by a handler.

``build_event`` turns an HTTP request into the event API Gateway would send; ``http_response``
turns what the handler returned into the HTTP response API Gateway would send back. Both follow
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from kudos.local import LocalError

ACCOUNT_ID = "123456789012"
API_ID = "local"
# API Gateway's own answer when the integration fails or returns something it cannot use.
INTERNAL_ERROR_BODY = {"message": "Internal Server Error"}
# Formatted by hand: strftime's %b follows the process locale, API Gateway's does not.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
_TEXT_SUFFIXES = ("+json", "+xml")


class InvalidLambdaResponse(LocalError):
    """The handler returned something API Gateway would answer with a 502."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    body = json.dumps(payload).encode()
    return HttpResponse(status, [("content-type", "application/json"), *headers], body)


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str = "",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    route_key: str,
    path_parameters: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    server_port: int | None = None,
    protocol: str = "HTTP/1.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The payload 2.0 event for one request; ``raw_path`` and ``raw_query`` exactly as sent."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            # 2.0 moves cookies out of the headers into their own list.
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
        else:
            # 2.0 has no multi-value headers: repeats are joined with commas.
            merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-proto", "http")
    if server_port is not None:
        merged.setdefault("x-forwarded-port", str(server_port))

    now = now or datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    query = query_parameters(raw_query)
    if query:
        event["queryStringParameters"] = query
    # A domain name has no port; API Gateway's never does.
    host = merged.get("host", "localhost").rsplit(":", 1)[0]
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {
            "method": method.upper(),
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": base64.b64encode(os.urandom(11)).decode(),
        "routeKey": route_key,
        "stage": "$default",
        "time": _request_time(now),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if body:
        if _is_text(merged.get("content-type", ""), body):
            event["body"] = body.decode()
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    return event


def query_parameters(raw_query: str) -> dict[str, str]:
    """Decoded query parameters; a repeated name's values joined with commas, as payload 2.0 does."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


def http_response(result: Any) -> HttpResponse:
    """What API Gateway answers for a handler's return value; raises InvalidLambdaResponse for a 502."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # 2.0 accepts any JSON value without statusCode: a 200 whose body is that JSON.
        try:
            return json_response(200, result)
        except (TypeError, ValueError) as error:
            raise InvalidLambdaResponse(f"result is not JSON: {error}") from error
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise InvalidLambdaResponse(f"statusCode must be an HTTP status, got {status!r}")
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise InvalidLambdaResponse("headers must be an object")
    headers = [(str(name), _header_value(name, value)) for name, value in raw_headers.items()]
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(cookie, str) for cookie in cookies):
        raise InvalidLambdaResponse("cookies must be a list of strings")
    headers.extend(("set-cookie", cookie) for cookie in cookies)
    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise InvalidLambdaResponse(f"body must be a string, got {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(body, validate=True)
        except binascii.Error as error:
            raise InvalidLambdaResponse(f"isBase64Encoded but the body is not base64: {error}") from error
    else:
        payload = body.encode()
    return HttpResponse(status, headers, payload)


def _header_value(name: object, value: object) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidLambdaResponse(f"header {name!r} must be a string or number, got {type(value).__name__}")


def _is_text(content_type: str, body: bytes) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    textual = not media or media.startswith(_TEXT_TYPES) or media.endswith(_TEXT_SUFFIXES)
    if not textual:
        return False
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _request_time(now: datetime) -> str:
    now = now.astimezone(UTC)
    return f"{now:%d}/{_MONTHS[now.month - 1]}/{now:%Y:%H:%M:%S} +0000"


@dataclass
class LambdaContext:
    """The context object the Lambda Python runtime passes; what Powertools reads from it."""

    function_name: str
    memory_limit_in_mb: int = 128
    timeout_seconds: float = 3.0
    region: str = "us-east-1"
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{datetime.now(UTC):%Y/%m/%d}/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
