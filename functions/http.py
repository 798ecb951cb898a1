"""What every HTTP function shares: the resolver, auth, the request body, and errors mapped to HTTP.

Errors become responses here and nowhere else: ERROR_STATUSES maps each domain error to its
status; a record that kept changing under concurrent writers is a 503 the client may retry;
anything unexpected is logged with its traceback and answered with a 500 that says nothing internal.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from kudos.core.credentials import KeyKind, key_fingerprint
from kudos.core.credentials import check_key as check_key_of
from kudos.core.errors import (
    BadRequest,
    KudosError,
    NotFound,
    PayloadTooLarge,
    SegmentRulesError,
    Unauthorized,
)
from kudos.ingest.updates import ConcurrentUpdateError
from kudos.ingest.validation import parse_body
from kudos.runtime import services

logger = Logger()

# Every route of the HTTP API (api.md): path -> {method: the Logical ID of the function serving it},
# so that any function can tell a wrong method (405) from an unknown path (404), and name the
# function an event meant for another one should go to.
# template.yaml declares the same routes to API Gateway. Lambda code cannot read template.yaml at
# run time, so this is a copy, and tests/unit/test_template.py fails unless the two are exactly
# equal. A checked copy rather than a module generated from the template: it stays readable beside
# the resolver, and there is no generation step to forget before a test run or a deploy.
ROUTES: dict[str, dict[str, str]] = {
    "/v1/sessions": {"POST": "SdkIngestFunction"},
    "/v1/push/tokens": {"POST": "SdkIngestFunction"},
    "/v1/push/events": {"POST": "SdkIngestFunction"},
    "/v1/users/track": {"POST": "BackendIngestFunction"},
    "/v1/users/identify": {"POST": "BackendIngestFunction"},
    "/v1/users/delete": {"POST": "BackendIngestFunction"},
    "/v1/metrics/active-users": {"GET": "MetricsFunction"},
    "/v1/segments": {"GET": "SegmentsFunction"},
    "/v1/segments/{name}/members": {"GET": "SegmentsFunction"},
    "/v1/segments/{name}/explain": {"GET": "SegmentsFunction"},
    "/v1/segments/{name}/changes": {"GET": "SegmentsFunction"},
    "/v1/campaigns": {"GET": "CampaignsFunction"},
    "/v1/campaigns/{name}/sends": {"GET": "CampaignsFunction"},
    "/v1/campaigns/{name}/explain": {"GET": "CampaignsFunction"},
    "/v1/campaigns/{name}/report": {"GET": "CampaignsFunction"},
    "/v1/campaigns/{name}/pause": {"POST": "CampaignsFunction"},
    "/v1/campaigns/{name}/resume": {"POST": "CampaignsFunction"},
    # The OpenAPI description of this table (functions/openapi.json), served by a small read-only
    # function rather than a function of its own.
    "/v1/openapi.json": {"GET": "MetricsFunction"},
}
# The functions the app (SDK) calls with an app key; every other function needs a server key, so a
# new route is a server route unless its function is listed here.
APP_KEY_FUNCTIONS = frozenset({"SdkIngestFunction"})
_ROUTE_PATTERNS = [
    (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), served_by)
    for path, served_by in ROUTES.items()
]

# The one mapping from domain errors to HTTP statuses; an error takes the status of the first of
# its classes (most specific first) listed here.
ERROR_STATUSES: dict[type[KudosError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    NotFound: 404,
    PayloadTooLarge: 413,
    # The deployed rules are broken: nothing the caller can fix.
    SegmentRulesError: 500,
    KudosError: 400,
}


def json_response(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=payload, headers=headers
    )


def error_response(error: KudosError) -> Response:
    payload: dict[str, Any] = {"message": error.message}
    if error.errors:
        payload["errors"] = error.errors
    return json_response(error_status(error), payload)


def error_status(error: KudosError) -> int:
    return next(ERROR_STATUSES[cls] for cls in type(error).__mro__ if cls in ERROR_STATUSES)


def functions_serving(path: str) -> dict[str, str] | None:
    """{method: function} for the route ``path`` belongs to, or None when no route fits it."""
    for pattern, served_by in _ROUTE_PATTERNS:
        if pattern.match(path):
            return served_by
    return None


def key_kind_of_function(function: str) -> KeyKind:
    return "app" if function in APP_KEY_FUNCTIONS else "server"


def key_kind_of_route(route_key: str) -> KeyKind | None:
    """The kind of key a route (`POST /v1/sessions`, `ANY /v1/sessions`) needs; None if no such route."""
    _, _, path = route_key.partition(" ")
    served_by = ROUTES.get(path)
    if not served_by:
        return None
    return key_kind_of_function(next(iter(served_by.values())))


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: `x-api-key`, else `Authorization: Bearer <key>` (names in any case)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if lowered.get("x-api-key"):
        return lowered["x-api-key"]
    scheme, _, token = lowered.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_key(headers: Mapping[str, str], kind: KeyKind) -> None:
    """Raise Unauthorized unless the request carries a key of ``kind`` (when keys are in force)."""
    presented = presented_key(headers)
    try:
        check_key_of(services().key_ring(kind), presented)
    except Unauthorized:
        # The key's hash, never the key: a log reader can tell keys apart without being able to use one.
        logger.info("key refused", extra={"key_kind": kind, "key": key_fingerprint(presented)})
        raise


def stack_summary(error: BaseException) -> list[str]:
    """Where an error was raised, frame by frame, without its message (which may hold user ids)."""
    frames = traceback.extract_tb(error.__traceback__)
    return [f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}" for frame in frames]


def build_app(kind: KeyKind) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    def require_key(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
        # A route that does not exist is a 404 or 405 with or without a key, as API Gateway
        # answers before any authorizer runs.
        event = app.current_event
        if event.http_method in (functions_serving(event.path) or {}):
            check_key(dict(event.headers or {}), kind)
        return next_middleware(app)

    app.use(middlewares=[require_key])

    @app.exception_handler(KudosError)
    def _kudos_error(error: KudosError) -> Response:
        return error_response(error)

    @app.exception_handler(ConcurrentUpdateError)
    def _contention(error: ConcurrentUpdateError) -> Response:
        # Not the error's text: it names the users whose records kept changing.
        logger.warning("gave up after concurrent updates", extra={"stack": stack_summary(error)})
        return json_response(
            503, {"message": "the data changed concurrently; retry the request"}, {"Retry-After": "1"}
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        # No message and no traceback text: either may quote a user id or a request value.
        logger.error(
            "unhandled error", extra={"error_type": type(error).__name__, "stack": stack_summary(error)}
        )
        return json_response(500, {"message": "internal error"})

    @app.not_found
    def _not_found(_: Exception) -> Response:
        method, path = app.current_event.http_method, app.current_event.path
        served_by = functions_serving(path)
        if served_by is None:
            return error_response(NotFound(f"no route {path}"))
        if method in served_by:
            # Only an event invoked by hand (kudos invoke, the console) reaches the wrong function:
            # API Gateway routes by the same table.
            return error_response(
                NotFound(f"{method} {path} is served by {served_by[method]}, not by this function")
            )
        allowed = ", ".join(served_by)
        return json_response(
            405, {"message": f"{method} is not allowed on {path}; use {allowed}"}, {"Allow": allowed}
        )

    return app


def request_body(app: APIGatewayHttpResolver) -> Any:
    event = app.current_event
    return parse_body(event.body, is_base64=bool(event.is_base64_encoded))


def query_parameter(app: APIGatewayHttpResolver, name: str) -> str | None:
    parameters = app.current_event.query_string_parameters or {}
    value: str | None = parameters.get(name)
    return value


def lambda_handler(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for ``app``, with Powertools' request context in every log line."""

    @logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler
