"""Lambda's SQS event source mapping, locally (kudos/local/queues.py), on moto's SQS: batches of the
template's BatchSize, Lambda's SQS event, partial batch failures, and a raising invocation retrying
its whole batch; the template's SQS events as kudos.local.routes reads them."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kudos.core.settings import Settings
from kudos.local.gateway import LocalLambda
from kudos.local.messaging import (
    LocalMessaging,
    create_messaging,
    delete_messaging,
    messaging_client,
    messaging_endpoint,
)
from kudos.local.queues import QueueDrainer, send_queue_drainer
from kudos.local.routes import QueueSource, find_template, load_template
from kudos.local.sqs import failed_ids, received_event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def messaging(env_for: Any) -> Iterator[LocalMessaging]:
    env_for(Settings())  # dummy credentials
    made = create_messaging("us-east-1", messaging_endpoint())
    yield made
    delete_messaging(made)


@pytest.fixture
def jobs(local_app_template: Path) -> Iterator[list[list[str]]]:
    sys.path.insert(0, str(local_app_template.parent))
    import local_app_handlers  # type: ignore[import-not-found]

    local_app_handlers.JOBS_SEEN.clear()
    yield local_app_handlers.JOBS_SEEN
    sys.path.remove(str(local_app_template.parent))


def drainer_of(template_path: Path, messaging: LocalMessaging, **options: Any) -> QueueDrainer:
    consumer = load_template(template_path).queue_consumer("JobsQueue")
    assert consumer is not None
    function, source = consumer
    client = sqs(messaging)
    return QueueDrainer(
        LocalLambda(), function, source, client, messaging.send_queue_url, log=False, **options
    )


def sqs(messaging: LocalMessaging) -> Any:
    return messaging_client("sqs", messaging.region, messaging.endpoint_url)


def counts(messaging: LocalMessaging) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attributes = sqs(messaging).get_queue_attributes(
        QueueUrl=messaging.send_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def queue(messaging: LocalMessaging, *bodies: str) -> None:
    for body in bodies:
        sqs(messaging).send_message(QueueUrl=messaging.send_queue_url, MessageBody=body)


def test_the_template_sqs_events_are_read(local_app_template: Path) -> None:
    consumer = load_template(local_app_template).queue_consumer("JobsQueue")
    assert consumer is not None
    function, source = consumer
    assert function.logical_id == "JobsFunction"
    assert source == QueueSource("Jobs", "JobsQueue", batch_size=2, window_s=0.0, reports_failures=True)
    assert load_template(local_app_template).queue_consumer("SendQueue") is None
    # The real stack: SendFunction reads SendQueue.
    real = load_template(find_template(ROOT)).queue_consumer("SendQueue")
    assert real is not None
    assert real[0].logical_id == "SendFunction"
    assert real[1].reports_failures


def test_a_batch_is_lambdas_sqs_event_of_at_most_batch_size_messages(
    local_app_template: Path, messaging: LocalMessaging, jobs: list[list[str]]
) -> None:
    queue(messaging, "a", "b", "c")
    drainer = drainer_of(local_app_template, messaging)

    assert drainer.drain() == 3

    assert sorted(body for batch in jobs for body in batch) == ["a", "b", "c"]
    assert max(len(batch) for batch in jobs) == 2
    assert counts(messaging) == (0, 0)


def test_only_the_failed_messages_of_a_batch_stay_in_the_queue(
    local_app_template: Path, messaging: LocalMessaging, jobs: list[list[str]]
) -> None:
    queue(messaging, "ok", "fail")
    drainer = drainer_of(local_app_template, messaging)

    assert drainer.take() == 2

    # Received again once its visibility timeout has passed; the other one is deleted.
    assert counts(messaging) == (0, 1)
    assert drainer.failures == 1


def test_an_invocation_that_raises_leaves_its_whole_batch(
    local_app_template: Path,
    messaging: LocalMessaging,
    jobs: list[list[str]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    queue(messaging, "raise", "ok")
    drainer = drainer_of(local_app_template, messaging)

    assert drainer.take() == 2

    assert counts(messaging) == (0, 2)
    assert "JobsFunction raised RuntimeError" in capfd.readouterr().err


def test_the_thread_takes_messages_as_they_come_and_wait_idle_sees_them_done(
    local_app_template: Path, messaging: LocalMessaging, jobs: list[list[str]]
) -> None:
    batches: list[tuple[int, int]] = []
    drainer = drainer_of(
        local_app_template, messaging, on_batch=lambda taken, failed: batches.append((taken, failed))
    )
    drainer.start()
    try:
        queued = time.monotonic()
        queue(messaging, "x")
        assert drainer.wait_idle(5)
        assert time.monotonic() - queued < 2
        assert jobs == [["x"]]
        assert batches == [(1, 0)]
    finally:
        drainer.stop()
    assert not any(thread.name == "kudos-JobsQueue" for thread in threading.enumerate())


def test_wait_idle_gives_up_on_a_message_nobody_takes(
    local_app_template: Path, messaging: LocalMessaging
) -> None:
    queue(messaging, "never taken")
    drainer = drainer_of(local_app_template, messaging)

    started = time.monotonic()
    assert drainer.wait_idle(0.3) is False
    assert time.monotonic() - started < 2


def test_no_send_queue_drainer_for_a_queue_on_aws(local_app_template: Path) -> None:
    template = load_template(find_template(ROOT))
    on_aws = Settings(send_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/kudos-SendQueue-X")
    assert send_queue_drainer(LocalLambda(), template, on_aws) is None
    local = on_aws.model_copy(update={"sqs_endpoint_url": "http://127.0.0.1:4566"})
    assert send_queue_drainer(LocalLambda(), template, local) is not None
    # A template without a function on the send queue.
    assert send_queue_drainer(LocalLambda(), load_template(local_app_template), local) is None


def test_a_received_message_is_lambdas_sqs_record_and_failures_are_read() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": json.dumps({"user": "u:u-1"}),
        "MD5OfBody": "0" * 32,
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1795348800150", "Other": "x"},
        "MessageAttributes": {"kind": {"StringValue": "send", "DataType": "String"}},
    }
    (record,) = received_event([message], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")["Records"]
    assert record == {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1795348800150"},
        "messageAttributes": {"kind": {"stringValue": "send", "dataType": "String"}},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "m-1"}]}) == {"m-1"}
    assert failed_ids({"batchItemFailures": []}) == set()
    assert failed_ids(None) == set()
