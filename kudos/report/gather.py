"""The report's data, read from a Storage through the domain functions the routes call (no HTTP).

- ``gather_report(store, segments, now, settings=..., date_from=..., date_to=...) -> ReportData``
- ``write_report(path, store, segments, now, ...)``: gather, render (kudos.report.html) and write
  the file; what `kudos report` and the demo call.

The days are those GET /v1/metrics/active-users answers for the same ``from`` and ``to`` (YYYY-MM-DD,
UTC): ``to`` defaults to and stops at today (the day of ``now``), ``from`` defaults to the 29 days
before ``to``, at most 366 days; bad values raise BadRequest with the route's message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dsl import SegmentSet
from dsl.campaigns import CompiledCampaign
from kudos.campaigns.report import campaign_report
from kudos.core.settings import Settings, get_settings
from kudos.core.timeutil import SECONDS_PER_DAY, day_of, format_day, format_instant, parse_date
from kudos.metrics.active_users import READ_PARALLELISM, active_users_report
from kudos.report.html import render_html
from kudos.report.model import CampaignSection, ReportData, SegmentDay, SegmentSeries
from kudos.store.ports import CHANGE_RETENTION_DAYS, MembershipChange, Storage

CHANGES_PAGE = 1000


def gather_report(
    store: Storage,
    segments: SegmentSet,
    now: float,
    *,
    settings: Settings | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> ReportData:
    """Everything the report shows, as of ``now``."""
    settings = settings or get_settings()
    days = active_users_report(store, settings, now, date_from, date_to)["days"]
    first, last = parse_date(days[0]["date"]), parse_date(days[-1]["date"])
    sweep = store.figures.last_sweep()
    # Changes are recorded at the clock of the call or sweep that found them, which a sweep's event
    # may set past the wall clock (as GET /v1/segments/{name}/changes reads them).
    latest = max(now, sweep.at) if sweep is not None else now
    # The first UTC day whose changes are all still kept (each expires CHANGE_RETENTION_DAYS after it).
    log_from = day_of(now - CHANGE_RETENTION_DAYS * SECONDS_PER_DAY) + 1
    return ReportData(
        first_day=format_day(first),
        last_day=format_day(last),
        generated_at=format_instant(now),
        active_users=days,
        segments=[
            segment_series(store, name, segments[name].title, first, last, day_of(latest), log_from)
            for name in segments
        ],
        campaigns=campaign_sections(store, segments, first, last),
        last_sweep=format_instant(sweep.at) if sweep is not None else None,
        change_log_from=format_day(log_from),
    )


def changes_of_day(store: Storage, name: str, day: int) -> Iterator[MembershipChange]:
    """Every change of segment ``name`` logged on UTC day ``day`` (newest first), page by page."""
    cursor: MembershipChange | None = None
    while True:
        batch = store.memberships.changes_on_day(name, day, older_than=cursor, limit=CHANGES_PAGE)
        yield from batch
        if len(batch) < CHANGES_PAGE:
            return
        cursor = batch[-1]


def day_changes(store: Storage, name: str, day: int) -> tuple[int, int]:
    """(entries, exits) of segment ``name`` logged on UTC day ``day``."""
    entered = exited = 0
    for change in changes_of_day(store, name, day):
        if change.change == "entered":
            entered += 1
        else:
            exited += 1
    return entered, exited


def segment_series(
    store: Storage, name: str, title: str | None, first: int, last: int, latest: int, log_from: int
) -> SegmentSeries:
    """Entries and exits per day of first..last, and the size at the end of each: the stored size
    minus the net of the changes logged after that day (up to ``latest``, the last day with any).
    Days before ``log_from`` have lost changes to the log's retention: unknown (None)."""
    size = store.memberships.count_members(name)
    read = list(range(max(first, log_from), max(latest, last) + 1))
    # One Query (or more) a day: up to a year of days, read in parallel as the active users are.
    with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
        counts = dict(zip(read, pool.map(lambda day: day_changes(store, name, day), read), strict=True))
    net_after = 0  # entries minus exits logged after the day being looked at
    by_day: dict[int, SegmentDay] = {}
    for day in range(max(latest, last), first - 1, -1):
        if day < log_from:
            by_day[day] = SegmentDay(format_day(day), None, None, None)
            continue
        entered, exited = counts[day]
        by_day[day] = SegmentDay(format_day(day), entered, exited, size - net_after)
        net_after += entered - exited
    return SegmentSeries(
        name=name, title=title, size=size, days=[by_day[day] for day in range(first, last + 1)]
    )


def campaign_sections(store: Storage, segments: SegmentSet, first: int, last: int) -> list[CampaignSection]:
    """The deployed campaigns in file order, then those with a stored state only (no longer deployed)."""
    states = store.campaigns.states()
    names = list(segments.campaigns) + sorted(name for name in states if name not in segments.campaigns)
    sections = []
    for name in names:
        campaign = segments.campaigns.get(name)
        report = campaign_report(store, name, campaign, states.get(name), first, last)
        sections.append(campaign_section(name, campaign, report))
    return sections


def campaign_section(name: str, campaign: CompiledCampaign | None, report: dict[str, Any]) -> CampaignSection:
    if campaign is None:
        return CampaignSection(name, None, None, None, None, None, None, None, None, report)
    definition = campaign.definition
    push = definition.push
    conversion = definition.conversion
    conversion_text = None
    if conversion is not None:
        event = f' "{conversion.event_name.value}"' if conversion.event_name is not None else ""
        conversion_text = f"{conversion.kind.value}{event} within {conversion.window.text}"
    guardrail = definition.guardrail
    return CampaignSection(
        name=name,
        title=campaign.title,
        audience=campaign.audience,
        push_title=push.title.text if push is not None and push.title is not None else None,
        push_body=push.body.text if push is not None and push.body is not None else None,
        holdout=definition.holdout.text if definition.holdout is not None else "none",
        conversion=conversion_text,
        guardrail=(
            f"opt-outs above {guardrail.opt_outs_above.text} after {guardrail.after_sends:,} sends"
            if guardrail is not None
            else None
        ),
        source=campaign.source,
        report=report,
    )


def write_report(
    path: Path,
    store: Storage,
    segments: SegmentSet,
    now: float,
    *,
    settings: Settings | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> ReportData:
    """Gather the report as of ``now``, render it and write it to ``path``. Returns what it shows."""
    data = gather_report(store, segments, now, settings=settings, date_from=date_from, date_to=date_to)
    page = render_html(data)
    path = Path(path)
    # Written beside it, then renamed over it: a reader (a browser reloading) never sees half a file.
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return data
