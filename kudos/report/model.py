"""What a report shows: plain data, built by kudos.report.gather and drawn by kudos.report.html.

Figures that a route already answers with keep that route's JSON shape: the days of
GET /v1/metrics/active-users (``date``, ``dau``, ``wau``, ``mau``, ``new_users``, ``sessions``,
``stickiness``) and the body of a campaign's report (kudos.campaigns.report.campaign_report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SegmentDay:
    """One UTC day of a segment. None: the change log no longer covers that day (it keeps
    CHANGE_RETENTION_DAYS), so neither the changes nor the size derived from them are known."""

    date: str
    entered: int | None
    exited: int | None
    # Members at the end of the day: the stored size minus the net of the changes logged since.
    size: int | None


@dataclass(frozen=True, slots=True)
class SegmentSeries:
    name: str
    title: str | None
    size: int  # stored membership now
    days: Sequence[SegmentDay]


@dataclass(frozen=True, slots=True)
class CampaignSection:
    """A campaign as written (None when it is no longer deployed: only its stored state and sends
    remain) and its report over the report's days."""

    name: str
    title: str | None
    audience: str | None
    push_title: str | None
    push_body: str | None
    holdout: str | None  # as written, "10%"
    conversion: str | None  # as written, 'event "claimed_reward" within 3 days'
    guardrail: str | None  # 'opt_outs above 2% after 100 sends'
    source: str | None  # the campaign block as written
    report: Mapping[str, Any]  # campaign_report(...)


@dataclass(frozen=True, slots=True)
class ReportData:
    first_day: str  # YYYY-MM-DD, UTC
    last_day: str
    generated_at: str  # RFC 3339: the instant the figures are as of
    active_users: Sequence[Mapping[str, Any]]  # GET /v1/metrics/active-users "days"
    segments: Sequence[SegmentSeries]
    campaigns: Sequence[CampaignSection]
    last_sweep: str | None = None  # RFC 3339 instant of the last completed sweep
    change_log_from: str | None = None  # the first day the change log still covers in full
    title: str = "kudos report"
