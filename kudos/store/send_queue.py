"""The SQS queue of sends waiting for the sender (SendFunction's event source)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kudos.core.identity import UserKey
from kudos.core.settings import Settings
from kudos.store.clients import LazyClient, lazy_client
from kudos.store.ports import QueuedSend
from kudos.store.sqs_batches import send_in_batches

MAX_DELAY_SECONDS = 900  # SQS's limit


def send_message(send: QueuedSend) -> dict[str, Any]:
    return {"user": send.user.token, "send_id": send.send_id, "at": send.at}


def queued_send(body: str) -> QueuedSend:
    """The send a message names; ValueError (or KeyError) when the body is not one of ours."""
    message = json.loads(body)
    return QueuedSend(UserKey.parse(str(message["user"])), str(message["send_id"]), float(message["at"]))


class SqsSendQueue:
    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = LazyClient(lazy_client("sqs", settings.region, settings.sqs_endpoint_url), client)

    @property
    def client(self) -> Any:
        return self._client.get()

    def enqueue(self, sends: Sequence[QueuedSend], delay_seconds: int = 0) -> None:
        if not sends:
            return
        if self._settings.send_queue_url is None:
            raise RuntimeError("campaign sends need SEND_QUEUE_URL, the queue SendFunction drains")
        delay = max(0, min(MAX_DELAY_SECONDS, delay_seconds))
        entries = [
            {"Id": str(index), "MessageBody": json.dumps(send_message(send)), "DelaySeconds": delay}
            for index, send in enumerate(sends)
        ]
        unsent = send_in_batches(self.client, self._settings.send_queue_url, entries)
        if unsent:
            # Not lost: each send stays pending in its record, and the sweep queues it again.
            raise RuntimeError(f"could not queue {len(unsent)} send(s)")
