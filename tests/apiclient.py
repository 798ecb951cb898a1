"""Calls the real Lambda handlers through the routes template.yaml declares, as API Gateway would.

Services are injected (kudos.runtime.install) with the test's store and a clock the test moves,
so "server receive time" is whatever the test says it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlencode

from kudos import runtime
from kudos.core.settings import Settings
from kudos.core.timeutil import parse_instant
from kudos.local.gateway import LocalGateway
from kudos.local.routes import find_template, load_template
from kudos.store.dynamo import Store


@cache
def local_gateway() -> LocalGateway:
    return LocalGateway(load_template(find_template()))


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
        payload = (
            raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
        )
        result = (
            local_gateway()
            .handle(
                method,
                path,
                urlencode(query or {}),
                [("content-type", "application/json"), *(headers or {}).items()],
                payload,
            )
            .response
        )
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
