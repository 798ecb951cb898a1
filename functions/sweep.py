"""Scheduled: the membership sweep, for what time alone changes (campaigns.md "Membership changes").

The event is EventBridge's scheduled event; its `time` is the sweep's clock when later than the
wall clock (campaigns.md "Clock": on AWS they agree; locally it lets a test move time). A
`{"full": true}` in the event's detail asks for a full re-evaluation; `part`/`parts` run one part
of a parallel scan.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from kudos.core.timeutil import parse_instant
from kudos.runtime import services
from kudos.segments.queries import sweep_json
from kudos.segments.sweep import run_sweep

logger = Logger()
metrics = Metrics(namespace="Kudos")


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: Any) -> dict[str, Any]:
    svc = services()
    detail = event.detail or {}
    at = max(svc.clock(), parse_instant(event.time))
    run = run_sweep(
        svc.store,
        svc.segments(),
        at,
        svc.clock,
        full=bool(detail.get("full")),
        part=int(detail.get("part", 0)),
        parts=int(detail.get("parts", 1)),
    )
    summary = sweep_json(run)
    metrics.add_metric(name="SweepCompleted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="SweepUsersRead", unit=MetricUnit.Count, value=run.users_read)
    metrics.add_metric(name="SweepChanges", unit=MetricUnit.Count, value=run.changes)
    metrics.add_metric(name="SweepSeconds", unit=MetricUnit.Seconds, value=run.finished - run.started)
    logger.info("sweep done", extra=summary)
    return summary
