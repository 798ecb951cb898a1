"""The campaign sender (campaigns.md "Sending"): drains the send queue, one message per queued send,
with partial batch failures, so that one failing send is retried alone and never the whole batch."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kudos.campaigns.sender import deliver
from kudos.core.records import UserRecords
from kudos.runtime import services
from kudos.segments.membership import reevaluate
from kudos.store.send_queue import queued_send

logger = Logger()
metrics = Metrics(namespace="Kudos")
processor = BatchProcessor(event_type=EventType.SQS)


def _send(record: SQSRecord) -> None:
    svc = services()
    segments = svc.segments()
    try:
        message = queued_send(record.body)
    except (ValueError, KeyError, TypeError):
        # Not one of ours: retrying cannot help, and the dead-letter queue would only keep it.
        logger.error("unreadable send message dropped", extra={"message_id": record.message_id})
        return

    def reevaluate_user(user: UserRecords, at: float) -> None:
        reevaluate(svc.store, segments, user, at, "ingest")

    send = deliver(svc.store, svc.push, segments, message, svc.clock, reevaluate_user)
    if send is not None and not send.pending:
        metrics.add_metric(name=f"Send_{send.status}", unit=MetricUnit.Count, value=1)
        logger.info("send done", extra={"campaign": send.campaign, "status": send.status})


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Every batch is counted, so that a batch of sends still waiting (rate, quiet hours) has a metric.
    metrics.add_metric(name="SendMessages", unit=MetricUnit.Count, value=len(event.get("Records", [])))
    return dict(
        process_partial_response(event=event, record_handler=_send, processor=processor, context=context)
    )
