"""Scheduled daily: keep the figures of days that became final before their activity items expire."""

from typing import Any

from aws_lambda_powertools import Logger

from kudos.core.timeutil import format_day
from kudos.metrics.active_users import finalize_days
from kudos.runtime import services

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services()
    figures = finalize_days(svc.store, svc.settings, svc.clock())
    days = [format_day(f.day) for f in figures]
    logger.info("final figures kept", extra={"days": days})
    return {"finalized": days}
