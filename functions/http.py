"""What every HTTP function shares: the resolver, auth, the request body, and errors mapped to HTTP.

Errors become responses here and nowhere else: a KudosError carries its status; a record that
kept changing under concurrent writers is a 503 the client may retry; anything unexpected is
logged with its traceback and answered with a 500 that says nothing internal.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from kudos.core.errors import KudosError, MethodNotAllowed, NotFound, Unauthorized
from kudos.ingest.updates import ConcurrentUpdateError
from kudos.ingest.validation import parse_body
from kudos.runtime import services

logger = Logger()

KeyKind = Literal["app", "server"]
# Every route of the HTTP API (api.md), so that any function can tell a wrong method (405) from
# an unknown path (404).
ROUTES: dict[str, tuple[str, ...]] = {
    "/v1/sessions": ("POST",),
    "/v1/push/tokens": ("POST",),
    "/v1/push/events": ("POST",),
    "/v1/users/track": ("POST",),
    "/v1/users/identify": ("POST",),
    "/v1/users/delete": ("POST",),
    "/v1/metrics/active-users": ("GET",),
    "/v1/segments": ("GET",),
    "/v1/segments/{name}/members": ("GET",),
    "/v1/segments/{name}/explain": ("GET",),
}
_ROUTE_PATTERNS = [
    (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), methods) for path, methods in ROUTES.items()
]


def json_response(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=payload, headers=headers
    )


def error_response(error: KudosError) -> Response:
    payload: dict[str, Any] = {"message": error.message}
    if error.errors:
        payload["errors"] = error.errors
    return json_response(error.status, payload)


def allowed_methods(path: str) -> tuple[str, ...] | None:
    for pattern, methods in _ROUTE_PATTERNS:
        if pattern.match(path):
            return methods
    return None


def _presented_key(headers: dict[str, str]) -> str | None:
    lowered = {name.lower(): value for name, value in headers.items()}
    if lowered.get("x-api-key"):
        return lowered["x-api-key"]
    scheme, _, token = lowered.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_key(headers: dict[str, str], kind: KeyKind) -> None:
    """Raise Unauthorized unless the request carries a key of ``kind`` (when keys are in force)."""
    settings = services().settings
    accepted = settings.app_keys if kind == "app" else settings.server_keys
    if not settings.auth_required and not settings.app_keys and not settings.server_keys:
        return
    presented = _presented_key(headers)
    if presented is None:
        raise Unauthorized(f"an {kind} key is required (x-api-key or Authorization: Bearer)")
    if not any(hmac.compare_digest(presented.encode(), key.encode()) for key in accepted):
        raise Unauthorized(f"the key is not a valid {kind} key")


def build_app(kind: KeyKind) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    def require_key(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
        # A route that does not exist is a 404 or 405 with or without a key, as API Gateway
        # answers before any authorizer runs.
        event = app.current_event
        if event.http_method in (allowed_methods(event.path) or ()):
            check_key(dict(event.headers or {}), kind)
        return next_middleware(app)

    app.use(middlewares=[require_key])

    @app.exception_handler(KudosError)
    def _kudos_error(error: KudosError) -> Response:
        return error_response(error)

    @app.exception_handler(ConcurrentUpdateError)
    def _contention(error: ConcurrentUpdateError) -> Response:
        logger.warning("gave up after concurrent updates", extra={"reason": str(error)})
        return json_response(
            503, {"message": "the data changed concurrently; retry the request"}, {"Retry-After": "1"}
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return json_response(500, {"message": "internal error"})

    @app.not_found
    def _not_found(_: Exception) -> Response:
        path = app.current_event.path
        methods = allowed_methods(path)
        if methods is None:
            return error_response(NotFound(f"no route {path}"))
        error = MethodNotAllowed(
            f"{app.current_event.http_method} is not allowed on {path}; use {', '.join(methods)}"
        )
        response = error_response(error)
        response.headers["Allow"] = ", ".join(methods)
        return response

    return app


def request_body(app: APIGatewayHttpResolver) -> Any:
    event = app.current_event
    return parse_body(event.body, is_base64=bool(event.is_base64_encoded))


def query(app: APIGatewayHttpResolver, name: str) -> str | None:
    parameters = app.current_event.query_string_parameters or {}
    value: str | None = parameters.get(name)
    return value


def lambda_handler(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for ``app``, with Powertools' request context in every log line."""

    @logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler
