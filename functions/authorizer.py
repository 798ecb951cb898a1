"""The HTTP API's Lambda authorizer: REQUEST type, payload format 2.0, simple responses.

API Gateway calls it before any route's function; it allows a request only when the key it
carries is of the kind the route needs (app key on the SDK routes, server key on the others), so a
request with a wrong key invokes nothing else. The rules are kudos.core.credentials', the keys come
from SSM through the same loader as the handlers' own check (functions/http.py).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from functions.http import check_key, key_kind_of_route, stack_summary
from kudos.core.errors import Unauthorized

logger = Logger()

DENY: dict[str, Any] = {"isAuthorized": False}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    route_key = str(event.get("routeKey", ""))
    kind = key_kind_of_route(route_key)
    if kind is None:
        logger.warning("no such route", extra={"route_key": route_key})
        return DENY
    try:
        check_key(event.get("headers") or {}, kind)
    except Unauthorized:
        return DENY
    except Exception as error:
        # The keys could not be read (SSM throttled or unreachable): fail closed.
        logger.error(
            "cannot check the key", extra={"error_type": type(error).__name__, "stack": stack_summary(error)}
        )
        return DENY
    return {"isAuthorized": True, "context": {"key_kind": kind}}
