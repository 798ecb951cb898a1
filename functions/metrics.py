"""GET /v1/metrics/active-users, and the API's own description (GET /v1/openapi.json), with a server key."""

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response

from functions.http import build_app, json_response, lambda_handler, query_parameter
from kudos.metrics.active_users import active_users_report
from kudos.runtime import services

app = build_app("server")


@app.get("/v1/metrics/active-users")
def get_active_users() -> Response:
    svc = services()
    report = active_users_report(
        svc.store, svc.settings, svc.clock(), query_parameter(app, "from"), query_parameter(app, "to")
    )
    return json_response(200, report)


@cache
def openapi_document() -> dict[str, Any]:
    """functions/openapi.json, read once per process (it ships beside this module)."""
    document: dict[str, Any] = json.loads((Path(__file__).resolve().parent / "openapi.json").read_text())
    return document


@app.get("/v1/openapi.json")
def get_openapi() -> Response:
    return json_response(200, openapi_document())


handler = lambda_handler(app)
