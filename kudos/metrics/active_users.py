"""Exact daily / weekly / monthly active users, computed from the activity table.

A user (profile activity id) is active on a day when one of its sessions started that day or
/v1/users/track updated it that day. Figures are computed from what is stored, so a late upload
revises the days it belongs to. Once no upload can change a day any more (it is older than the
acceptance window), its figures are final and kept as a rollup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kudos.core.errors import BadRequest
from kudos.core.settings import Settings
from kudos.core.timeutil import InstantError, day_of, format_day, parse_date
from kudos.store.ports import ActivityPort, DayActivity, DayFigures, Storage

WEEK = 7
MONTH = 30
MAX_RANGE_DAYS = 366
READ_PARALLELISM = 8


def count_distinct_in_windows(
    active_days: Iterable[list[int]], first: int, last: int, width: int
) -> list[int]:
    """For each day first..last, how many users were active on it or the width-1 days before.

    Each user's activity becomes day intervals [d, d+width-1]; overlapping intervals are merged so a
    user counts once per day; a difference array then sums them in one pass.
    """
    span = last - first + 1
    delta = [0] * (span + 1)
    for days in active_days:
        run_start = run_end = None
        for day in sorted(days):
            if run_end is not None and day <= run_end + 1:
                run_end = day + width - 1
                continue
            if run_start is not None and run_end is not None:
                _add_run(delta, run_start, run_end, first, last)
            run_start, run_end = day, day + width - 1
        if run_start is not None and run_end is not None:
            _add_run(delta, run_start, run_end, first, last)
    counts, running = [], 0
    for offset in range(span):
        running += delta[offset]
        counts.append(running)
    return counts


def _add_run(delta: list[int], start: int, end: int, first: int, last: int) -> None:
    lo, hi = max(start, first), min(end, last)
    if lo > hi:
        return
    delta[lo - first] += 1
    delta[hi - first + 1] -= 1


def figures_from_activity(days: dict[int, DayActivity], first: int, last: int) -> list[DayFigures]:
    """Figures for first..last from the activity of first-29..last (the caller reads those days)."""
    active: dict[str, set[int]] = defaultdict(set)
    for day, activity in days.items():
        for aid in activity.session_aids:
            active[aid].add(day)
        for aid in activity.api_aids:
            active[aid].add(day)
    by_user = [list(user_days) for user_days in active.values()]
    dau = count_distinct_in_windows(by_user, first, last, 1)
    wau = count_distinct_in_windows(by_user, first, last, WEEK)
    mau = count_distinct_in_windows(by_user, first, last, MONTH)
    figures = []
    for offset, day in enumerate(range(first, last + 1)):
        today = days.get(day)
        figures.append(
            DayFigures(
                day=day,
                dau=dau[offset],
                wau=wau[offset],
                mau=mau[offset],
                new_users=len(set(today.new_user_aids)) if today else 0,
                sessions=len(today.session_aids) if today else 0,
            )
        )
    return figures


def is_final(settings: Settings, day: int, today: int) -> bool:
    """No accepted upload can change this day's figures any more."""
    return day < today - settings.session_max_age_days - 1


def compute_figures(activity: ActivityPort, first: int, last: int) -> list[DayFigures]:
    with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
        read = list(pool.map(activity.read_day, range(first - MONTH + 1, last + 1)))
    return figures_from_activity({activity.day: activity for activity in read}, first, last)


def daily_figures(store: Storage, settings: Settings, now: float, first: int, last: int) -> list[DayFigures]:
    """Figures for first..last: final days from their rollups, the others computed now."""
    today = day_of(now)
    final_days = [day for day in range(first, last + 1) if is_final(settings, day, today)]
    known = store.figures.get_rollups(final_days) if final_days else {}
    missing = [day for day in range(first, last + 1) if day not in known]
    if missing:
        for figures in compute_figures(store.activity, missing[0], missing[-1]):
            if figures.day in known:
                continue
            known[figures.day] = figures
            if is_final(settings, figures.day, today):
                store.figures.put_rollup(figures)
    return [known[day] for day in range(first, last + 1)]


def finalize_days(store: Storage, settings: Settings, now: float, lookback: int = 7) -> list[DayFigures]:
    """The scheduled rollup: keep the figures of days that just became final, before their items expire."""
    newest_final = day_of(now) - settings.session_max_age_days - 2
    return daily_figures(store, settings, now, newest_final - lookback + 1, newest_final)


def _figures_json(figures: DayFigures) -> dict[str, Any]:
    return {
        "date": format_day(figures.day),
        "dau": figures.dau,
        "wau": figures.wau,
        "mau": figures.mau,
        "new_users": figures.new_users,
        "sessions": figures.sessions,
        "stickiness": round(figures.dau / figures.mau, 4) if figures.mau else 0,
    }


def active_users_report(
    store: Storage, settings: Settings, now: float, date_from: str | None, date_to: str | None
) -> dict[str, Any]:
    """GET /v1/metrics/active-users?from=YYYY-MM-DD&to=YYYY-MM-DD; `to` defaults to (and stops at)
    today and `from` to the 29 days before `to` (a month, the span of MAU)."""
    today = day_of(now)
    # Days to come have no figures: `to` stops at today, and a `from` after today is refused.
    last = today if date_to is None else min(query_date("to", date_to), today)
    first = last - (MONTH - 1) if date_from is None else query_date("from", date_from)
    if first > today:
        raise BadRequest(
            f"from: {format_day(first)} is after today ({format_day(today)}); there are no figures for days to come"
        )
    if first > last:
        raise BadRequest("from: after to")
    if last - first + 1 > MAX_RANGE_DAYS:
        raise BadRequest(f"to: at most {MAX_RANGE_DAYS} days per request")
    return {"days": [_figures_json(f) for f in daily_figures(store, settings, now, first, last)]}


def query_date(name: str, text: str) -> int:
    """A YYYY-MM-DD query parameter as an epoch day; BadRequest naming the parameter."""
    try:
        return parse_date(text)
    except InstantError as error:
        raise BadRequest(f"{name}: {error}") from None
