"""API Gateway (HTTP API) and Lambda in this process: a request in, the handler's response out.

The one local stand-in for what AWS does between a client and a handler, shared by `kudos serve`
(over sockets), `kudos invoke` (an event, no request) and `kudos demo` (replayed traffic):
template.yaml's routes pick the function (404, or 405 with Allow, as API Gateway answers without
invoking anything), the request becomes the payload 2.0 event, the handler runs with a Lambda
context, and its result becomes the HTTP response (500 when it raises, 502 when API Gateway could
not use what it returned).

Handlers run one at a time, in the whole process: Lambda never runs two events in one execution
environment at once, and Powertools' Logger and Metrics keep per-invocation state in process-wide
objects that concurrent calls would mix up.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kudos.local.apigw import (
    INTERNAL_ERROR_BODY,
    HttpResponse,
    InvalidLambdaResponse,
    build_event,
    http_response,
    json_response,
)
from kudos.local.routes import Function, Handler, NoRoute, Template

_invoke_lock = threading.Lock()
# What the handlers (Powertools' APIGatewayHttpResolver) read of every HTTP API event.
REQUIRED_HTTP_FIELDS = ("rawPath", "requestContext.http.method")


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """One request through the gateway: the response, and what only local logs may show."""

    response: HttpResponse
    # The route that matched, as API Gateway writes it (`GET /v1/segments/{name}/members`): what an
    # access log shows instead of the target, whose query may hold user ids. None when none matched.
    route_key: str | None = None
    # Why the answer is a 500 or 502 (the handler's traceback, or what was wrong with its result);
    # never sent to the client, as on AWS.
    failure: str | None = None


class LocalLambda:
    """Lambda's side: each function's handler imported once (a cold start), then called per event."""

    def __init__(self, *, region: str = "us-east-1") -> None:
        self.region = region
        self._handlers: dict[str, Handler] = {}

    def invoke(self, function: Function, event: Any) -> Any:
        """Call ``function``'s handler once with a fresh Lambda context; exceptions propagate."""
        handler = self._handlers.get(function.logical_id)
        if handler is None:
            handler = self._handlers[function.logical_id] = function.resolve()
        with _invoke_lock:
            return handler(event, function.new_context(self.region))


class LocalGateway:
    """The HTTP API of one template, with its functions' handlers, on this machine."""

    def __init__(self, template: Template, *, region: str = "us-east-1") -> None:
        self.template = template
        self.lambda_runtime = LocalLambda(region=region)

    def handle(
        self,
        method: str,
        raw_path: str,
        raw_query: str = "",
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        source_ip: str = "127.0.0.1",
        server_port: int | None = None,
        now: datetime | None = None,
    ) -> GatewayResult:
        """Route and run one request; ``raw_path`` and ``raw_query`` exactly as sent."""
        match = self.template.router.match(method, raw_path)
        if isinstance(match, NoRoute):
            allow = [("allow", ", ".join(match.allowed))] if match.allowed else []
            return GatewayResult(json_response(match.status, {"message": match.message}, allow))
        route_key = match.route.route_key
        event = build_event(
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            route_key=route_key,
            path_parameters=match.path_parameters,
            source_ip=source_ip,
            server_port=server_port,
            now=now,
        )
        function = match.function
        try:
            return GatewayResult(http_response(self.lambda_runtime.invoke(function, event)), route_key)
        except InvalidLambdaResponse as error:
            failure = f"{function.logical_id} returned a response API Gateway rejects (502): {error}"
            return GatewayResult(json_response(502, INTERNAL_ERROR_BODY), route_key, failure)
        except Exception as error:
            # On AWS the invocation fails and API Gateway answers 500; keep why, as Lambda's log would.
            # Where, not what: the error's message and the values in a traceback may quote user ids.
            frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
            failure = f"{function.logical_id} raised {type(error).__name__}\n{frames}"
            return GatewayResult(json_response(500, INTERNAL_ERROR_BODY), route_key, failure)

    def route_key(self, method: str, raw_path: str) -> str | None:
        """The route a request would take, or None (for logs about requests refused before routing)."""
        match = self.template.router.match(method, raw_path)
        return None if isinstance(match, NoRoute) else match.route.route_key


def missing_http_fields(event: Any) -> list[str]:
    """The fields of REQUIRED_HTTP_FIELDS that ``event`` lacks (dotted), to explain a failed invoke."""
    missing = []
    for dotted in REQUIRED_HTTP_FIELDS:
        value = event
        for name in dotted.split("."):
            value = value.get(name) if isinstance(value, dict) else None
        if value is None:
            missing.append(dotted)
    return missing
