"""Fixtures for functional tests: a local API server, and an HTTP client that sends exactly what it is told.

- ``local_app_template``: the small test stack in tests/functional/local_app/ (not the real one).
- ``local_api``: ``kudos serve`` on that stack in a thread, on the ``dynamodb`` fixture's tables
  (so once on moto, once on DynamoDB Local); yields its base URL.
- ``http``: ``http(method, url, body=b"", headers=None) -> Reply`` over http.client, which leaves
  paths and bodies as given (urllib would re-quote paths and refuses some methods).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kudos.local.serve import serve_in_thread

LOCAL_APP = Path(__file__).resolve().parent / "local_app"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Http = Callable[..., Reply]


def send(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None, *, chunked: bool = False
) -> Reply:
    parts = urlsplit(url)
    connection = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        if chunked:
            connection.request(method, target, body=iter([body]), headers=headers or {}, encode_chunked=True)
        else:
            connection.request(method, target, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


@pytest.fixture
def http() -> Http:
    return send


@pytest.fixture
def local_app_template() -> Path:
    return LOCAL_APP / "template.yaml"


@pytest.fixture
def local_api(dynamodb: Any, local_app_template: Path) -> Iterator[str]:
    with serve_in_thread(template=local_app_template, settings=dynamodb.settings) as url:
        yield url
