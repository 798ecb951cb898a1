"""The SQS queue of sends waiting for the sender (SendFunction's event source)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kudos.core.identity import UserKey
from kudos.core.settings import Settings
from kudos.store.clients import LazyClient, lazy_client
from kudos.store.ports import QueuedSend

SEND_BATCH_LIMIT = 10
SEND_ATTEMPTS = 3
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
        for start in range(0, len(entries), SEND_BATCH_LIMIT):
            pending = entries[start : start + SEND_BATCH_LIMIT]
            for _ in range(SEND_ATTEMPTS):
                response = self.client.send_message_batch(
                    QueueUrl=self._settings.send_queue_url, Entries=pending
                )
                failed = {failure["Id"] for failure in response.get("Failed", [])}
                pending = [entry for entry in pending if entry["Id"] in failed]
                if not pending:
                    break
            if pending:
                # Not lost: each send stays pending in its record, and the sweep queues it again.
                raise RuntimeError(f"could not queue {len(pending)} send(s)")
