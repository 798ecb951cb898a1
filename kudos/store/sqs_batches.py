"""Sending messages to SQS in batches of ten, again for the entries a batch call did not take."""

from __future__ import annotations

from typing import Any

SEND_BATCH_LIMIT = 10
SEND_ATTEMPTS = 3


def send_in_batches(client: Any, queue_url: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SendMessageBatch over ``entries`` (each with a unique "Id"), retrying the entries SQS reports as
    failed a few times; the entries still not sent."""
    unsent: list[dict[str, Any]] = []
    for start in range(0, len(entries), SEND_BATCH_LIMIT):
        pending = entries[start : start + SEND_BATCH_LIMIT]
        for _ in range(SEND_ATTEMPTS):
            response = client.send_message_batch(QueueUrl=queue_url, Entries=pending)
            failed = {failure["Id"] for failure in response.get("Failed", [])}
            pending = [entry for entry in pending if entry["Id"] in failed]
            if not pending:
                break
        unsent += pending
    return unsent
