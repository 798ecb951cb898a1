"""An independent, deliberately naive model of api.md's active-user rules, for tests to compare with."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta


@dataclass(frozen=True)
class TrueSession:
    session_id: str
    user: str  # "u:<user_id>" or "d:<device_id>"
    started: datetime  # the real instant, in UTC


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def reference_figures(
    sessions: list[TrueSession], api_updates: dict[str, set[date]], first: date, last: date
):
    """api.md, read literally: one dict per day, first..last."""
    active: dict[date, set[str]] = defaultdict(set)
    session_ids: dict[date, set[str]] = defaultdict(set)
    seen: set[str] = set()
    for session in sessions:
        if session.session_id in seen:
            continue
        seen.add(session.session_id)
        active[day_of(session.started)].add(session.user)
        session_ids[day_of(session.started)].add(session.session_id)
    for user, days in api_updates.items():
        for day in days:
            active[day].add(user)
    first_day: dict[str, date] = {}
    for day in sorted(active):
        for user in active[day]:
            first_day.setdefault(user, day)
    figures = []
    day = first
    while day <= last:
        window = lambda width, d=day: set().union(*(active[d - timedelta(days=k)] for k in range(width)))  # noqa: E731
        dau, wau, mau = len(active[day]), len(window(7)), len(window(30))
        figures.append(
            {
                "date": day.isoformat(),
                "dau": dau,
                "wau": wau,
                "mau": mau,
                "new_users": sum(1 for d in first_day.values() if d == day),
                "sessions": len(session_ids[day]),
                "stickiness": round(dau / mau, 4) if mau else 0,
            }
        )
        day += timedelta(days=1)
    return figures


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_device_clock(moment: datetime, offset: timedelta) -> str:
    """How a device whose clock is ``offset`` ahead writes ``moment`` (in its own zone, for variety)."""
    return (
        (moment + offset).astimezone(datetime.fromisoformat("2000-01-01T00:00:00+02:00").tzinfo).isoformat()
    )
