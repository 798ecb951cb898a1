"""The membership sweep, for what time alone changes (campaigns.md "Membership changes").

Two event sources, one function:
- the schedule (EventBridge scheduled event): its `time` is the sweep's clock when later than the
  wall clock (campaigns.md "Clock": on AWS they agree; locally it lets a test move time);
  `{"full": true}` in its detail asks for a full re-evaluation;
- the sweep queue (SQS): one message per Scan part of a fanned-out full sweep (SWEEP_PARTS > 1),
  processed with partial batch failures, so one failing part is retried alone.
"""

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kudos.core.timeutil import parse_instant
from kudos.runtime import services
from kudos.segments.queries import sweep_json
from kudos.segments.sweep import run_sweep, run_sweep_part
from kudos.store.ports import SweepRun

logger = Logger()
metrics = Metrics(namespace="Kudos")
processor = BatchProcessor(event_type=EventType.SQS)


def _completed(run: SweepRun) -> dict[str, Any]:
    summary = sweep_json(run)
    metrics.add_metric(name="SweepCompleted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="SweepUsersRead", unit=MetricUnit.Count, value=run.users_read)
    metrics.add_metric(name="SweepChanges", unit=MetricUnit.Count, value=run.changes)
    metrics.add_metric(name="SweepSeconds", unit=MetricUnit.Seconds, value=run.finished - run.started)
    logger.info("sweep done", extra=summary)
    return summary


def _scheduled(event: EventBridgeEvent) -> dict[str, Any]:
    svc = services()
    at = max(svc.clock(), parse_instant(event.time))
    full = bool((event.detail or {}).get("full"))
    parts = svc.settings.sweep_parts
    run = run_sweep(svc.store, svc.segments(), at, svc.clock, full=full, parts=parts)
    if run is None:
        # Queued, not completed: SweepCompleted (and so the staleness alarm) waits for the last part.
        metrics.add_metric(name="SweepPartsQueued", unit=MetricUnit.Count, value=parts)
        logger.info("full sweep fanned out", extra={"parts": parts})
        return {"kind": "full", "fanned_out": parts}
    return _completed(run)


def _sweep_part(record: SQSRecord) -> None:
    svc = services()
    message = json.loads(record.body)
    run = run_sweep_part(
        svc.store,
        svc.segments(),
        float(message["at"]),
        int(message["part"]),
        int(message["parts"]),
        svc.clock,
    )
    logger.info("sweep part done", extra={"part": message["part"], "parts": message["parts"]})
    if run is not None:
        _completed(run)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:
        response = process_partial_response(
            event=event, record_handler=_sweep_part, processor=processor, context=context
        )
        return dict(response)
    return _scheduled(EventBridgeEvent(event))
