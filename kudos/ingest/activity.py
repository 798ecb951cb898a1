"""Bookkeeping shared by every path that makes a user active: markers in the activity table."""

from __future__ import annotations

from kudos.core.records import ActivityRecord
from kudos.core.settings import Settings
from kudos.core.timeutil import SECONDS_PER_DAY, day_start
from kudos.ingest.updates import Outcome, new_aid
from kudos.store.ports import ActivityPort


def activity_expiry(settings: Settings, day: int) -> int:
    """When a day's activity items may go: long after the day's figures became final."""
    return int(day_start(day)) + settings.session_retention_days * SECONDS_PER_DAY


def fresh_activity(now: float) -> ActivityRecord:
    return ActivityRecord(aid=new_aid(), created_at=now)


def note_first_activity(activity: ActivityPort, settings: Settings, outcome: Outcome) -> None:
    """Keep exactly one new-user marker per profile, on the day of its first activity.

    A late upload can move the first activity earlier: the marker moves with it, which is how
    late data revises ``new_users``.
    """
    before, after = outcome.before, outcome.after
    assert isinstance(after, ActivityRecord)
    old_day = before.first_active_day if isinstance(before, ActivityRecord) else None
    new_day = after.first_active_day
    if new_day is None or new_day == old_day:
        return
    activity.add_new_user(new_day, after.aid, activity_expiry(settings, new_day))
    if old_day is not None:
        activity.remove_new_user(old_day, after.aid)
