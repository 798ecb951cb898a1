"""Lambda's SQS event source mapping, locally: a queue drained into the function that reads it.

On AWS, Lambda polls the queue and invokes the function with batches of up to BatchSize messages
(template.yaml). With ReportBatchItemFailures the function names the messages that failed; those, or
every message of an invocation that raised, stay in the queue and are received again once their
visibility timeout has passed, until the redrive policy moves them to the dead-letter queue. The
others are deleted.

Locally a thread does the same for the send queue of `kudos serve` (campaigns.md "Locally": a queued
send is taken within 2 seconds), through the gateway's Lambda runner: one event at a time with the
HTTP handlers and the sweep, as one execution environment would. ``take`` is the same step on
demand, for `kudos invoke` and `kudos demo`, and ``wait_idle`` is how the Lambda Invoke API of
`kudos serve` returns only once the sends a sweep queued are done.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from kudos.core.settings import Settings
from kudos.local.gateway import LocalLambda
from kudos.local.messaging import SEND_QUEUE, drains_locally, messaging_client
from kudos.local.routes import Function, QueueSource, Template
from kudos.local.sqs import failed_ids, received_event

# The longest a receive waits for a message (SQS long polling): how soon the thread sees a stop.
POLL_SECONDS = 1
# SQS's own limits.
MAX_RECEIVE = 10
MAX_DELETE = 10
# Counted as "not yet done" by wait_idle: waiting, being processed, delayed (a `rate` re-queue).
_BACKLOG = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class QueueDrainer:
    """Takes ``queue_url`` into ``function`` as its event source mapping ``source`` would.

    ``start()`` runs a thread that takes batches as they come; ``take()`` takes one batch now.
    ``on_batch(taken, failed)`` is called after each invocation (the serve log).
    """

    def __init__(
        self,
        runtime: LocalLambda,
        function: Function,
        source: QueueSource,
        client: Any,
        queue_url: str,
        *,
        log: bool = True,
        on_batch: Callable[[int, int], object] | None = None,
    ) -> None:
        self.runtime = runtime
        self.function = function
        self.source = source
        self.client = client
        self.queue_url = queue_url
        self.log = log
        self.on_batch = on_batch
        self.batches = 0
        self.failures = 0
        self._queue_arn: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"kudos-{source.queue}", daemon=True)

    @property
    def queue_arn(self) -> str:
        if self._queue_arn is None:
            attributes = self.client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )
            self._queue_arn = str(attributes["Attributes"]["QueueArn"])
        return self._queue_arn

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Let a running invocation finish, then end the thread (messages still queued stay there)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.take(wait_seconds=POLL_SECONDS)
            except Exception as error:
                # The queue itself failed (it is being deleted at shutdown, most likely): say so, go on.
                if not self._stop.is_set():
                    print(
                        f"{self.source.queue}: {type(error).__name__}: {error}", file=sys.stderr, flush=True
                    )
                    self._stop.wait(POLL_SECONDS)

    def take(self, *, wait_seconds: int = 0) -> int:
        """Receive one batch (waiting up to ``wait_seconds`` for a first message), invoke the function
        with it, delete what did not fail; the number of messages taken."""
        received = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(MAX_RECEIVE, self.source.batch_size)),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        event = received_event(received, self.queue_arn, self.runtime.region)
        started = time.perf_counter()
        try:
            result = self.runtime.invoke(self.function, event)
        except Exception as error:
            # Lambda's view: the invocation failed, so the whole batch is retried.
            failed = {message["MessageId"] for message in received}
            print(
                f"{self.function.logical_id} raised {type(error).__name__} on a batch of {len(received)} from "
                f"{self.source.queue}\n{''.join(traceback.format_tb(error.__traceback__))}",
                file=sys.stderr,
                flush=True,
            )
        else:
            failed = failed_ids(result) if self.source.reports_failures else set()
        done = [message for message in received if message["MessageId"] not in failed]
        for start in range(0, len(done), MAX_DELETE):
            self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done[start : start + MAX_DELETE])
                ],
            )
        self.batches += 1
        self.failures += len(failed)
        if self.log:
            elapsed = (time.perf_counter() - started) * 1000
            outcome = f", {len(failed)} failed (received again later)" if failed else ""
            print(
                f"{self.function.logical_id} took {len(received)} message(s) from {self.source.queue}"
                f"{outcome} ({elapsed:.0f} ms)",
                file=sys.stderr,
                flush=True,
            )
        if self.on_batch is not None:
            self.on_batch(len(received), len(failed))
        return len(received)

    def drain(self) -> int:
        """Take batches until none is visible (delayed messages are left); the number taken."""
        taken = 0
        while batch := self.take():
            taken += batch
        return taken

    def backlog(self) -> int:
        """Messages not yet done: waiting, being processed, or delayed."""
        attributes = self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=list(_BACKLOG))
        return sum(int(attributes["Attributes"].get(name, 0)) for name in _BACKLOG)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every message queued so far is done (the thread takes them); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.backlog():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


def send_queue_drainer(
    runtime: LocalLambda,
    template: Template,
    settings: Settings,
    *,
    log: bool = True,
    on_batch: Callable[[int, int], object] | None = None,
    in_process: bool = False,
) -> QueueDrainer | None:
    """A drainer of the send queue into the template's function that reads SendQueue; None when the
    template has none, or when the queue is not one only this process drains (a queue on AWS).
    ``in_process``: the queue is moto's in this process (``mock_aws``, no endpoint)."""
    consumer = template.queue_consumer(SEND_QUEUE)
    if consumer is None or settings.send_queue_url is None:
        return None
    if not (in_process or drains_locally(settings)):
        return None
    function, source = consumer
    client = messaging_client("sqs", settings.region, settings.sqs_endpoint_url)
    return QueueDrainer(
        runtime, function, source, client, settings.send_queue_url, log=log, on_batch=on_batch
    )
