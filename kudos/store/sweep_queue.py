"""The SQS queue that holds the parts of a fanned-out full sweep, one message per Scan part."""

from __future__ import annotations

import json
from typing import Any

from kudos.core.settings import Settings
from kudos.store.clients import LazyClient, lazy_client
from kudos.store.sqs_batches import send_in_batches


def part_message(at: float, part: int, parts: int) -> dict[str, Any]:
    return {"at": at, "part": part, "parts": parts}


class SqsSweepQueue:
    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = LazyClient(lazy_client("sqs", settings.region, settings.sqs_endpoint_url), client)

    @property
    def client(self) -> Any:
        return self._client.get()

    def send_parts(self, at: float, parts: int) -> None:
        if self._settings.sweep_queue_url is None:
            raise RuntimeError("SWEEP_PARTS > 1 needs SWEEP_QUEUE_URL, the queue the parts go through")
        entries = [
            {"Id": str(part), "MessageBody": json.dumps(part_message(at, part, parts))}
            for part in range(parts)
        ]
        unsent = send_in_batches(self.client, self._settings.sweep_queue_url, entries)
        if unsent:
            # A part never sent would leave the full sweep unfinished: fail the invocation, so
            # that the schedule's retry plans it again.
            raise RuntimeError(f"could not queue sweep parts {[entry['Id'] for entry in unsent]}")
