"""boto3 clients made on first use (never at import time: a Lambda's cold start pays only for the
clients its code path needs), once per process however many threads ask, or injected by a test."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config


class LazyClient:
    def __init__(self, make: Callable[[], Any], client: Any | None = None) -> None:
        self._make = make
        self._client = client
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
        return self._client


def lazy_client(
    service: str, region: str, endpoint_url: str | None = None, config: Config | None = None
) -> Callable[[], Any]:
    """What makes a client of ``service``: for LazyClient."""
    return lambda: boto3.client(service, region_name=region, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]
