"""Calls the real Lambda handlers with API Gateway v2.0 events, as API Gateway would.

Services are injected (kudos.runtime.install) with the test's store and a clock the test moves,
so "server receive time" is whatever the test says it is.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from kudos import runtime
from kudos.local.apigw import LambdaContext, build_event, http_response
from kudos.settings import Settings
from kudos.store.dynamo import Store
from kudos.timeutil import parse_instant

# Which function serves which path prefix (template.yaml says the same; test_template checks it).
FUNCTION_BY_PREFIX = {
    "/v1/sessions": "functions.sdk_ingest",
    "/v1/push/": "functions.sdk_ingest",
    "/v1/users/": "functions.backend_ingest",
    "/v1/metrics/": "functions.metrics",
    "/v1/segments": "functions.segments",
}


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]


class ApiClient:
    def __init__(self, settings: Settings, client: Any, now: str = "2026-11-22T12:00:00Z") -> None:
        self.store = Store(settings, client)
        self.settings = settings
        self.now = parse_instant(now)
        runtime.install(runtime.Services(settings=settings, store=self.store, clock=lambda: self.now))

    def at(self, instant: str) -> ApiClient:
        self.now = parse_instant(instant)
        return self

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: bytes | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        module_name = next(module for prefix, module in FUNCTION_BY_PREFIX.items() if path.startswith(prefix))
        module = importlib.import_module(module_name)
        payload = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
        event = build_event(
            method=method,
            raw_path=path,
            raw_query=urlencode(query or {}),
            headers=[("content-type", "application/json"), *(headers or {}).items()],
            body=payload,
            route_key=f"{method} {path}",
            path_parameters=_path_parameters(path),
        )
        result = http_response(module.handler(event, LambdaContext(function_name=module_name.rsplit(".", 1)[-1])))
        text = result.body.decode()
        return ApiResponse(result.status, json.loads(text) if text else None, dict(result.headers))

    def post(self, path: str, body: Any = None, **options: Any) -> ApiResponse:
        return self.request("POST", path, body, **options)

    def get(self, path: str, **query: str) -> ApiResponse:
        return self.request("GET", path, query=query)

    def active_users(self, date_from: str, date_to: str) -> list[dict[str, Any]]:
        response = self.get("/v1/metrics/active-users", **{"from": date_from, "to": date_to})
        assert response.status == 200, response.body
        days: list[dict[str, Any]] = response.body["days"]
        return days


def _path_parameters(path: str) -> dict[str, str] | None:
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[:2] == ["v1", "segments"]:
        return {"name": parts[2]}
    return None
