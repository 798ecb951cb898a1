"""The scheduled sweep: what time alone changes (campaigns.md "Membership changes", 3).

A steady sweep reads only the users whose due instant has come since the last sweep (the due
index); a full sweep reads everyone (the first sweep, and whenever a rule's version changed).
Both re-evaluate at the sweep's instant and write only differences, so re-running, overlapping
or resuming after a crash records each change once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsl import SegmentSet
from kudos.core.clock import Clock
from kudos.segments.membership import announce, definition_versions, reevaluate
from kudos.store.ports import MembershipChange, Storage, SweepRun

OUTBOX_GRACE_SECONDS = 60


@dataclass(slots=True)
class SweepResult:
    users_read: int = 0
    changes: list[MembershipChange] = field(default_factory=list)


def sweep_due(store: Storage, segments: SegmentSet, since: float, at: float) -> SweepResult:
    """Re-evaluate at ``at`` every user whose due instant lies in (``since``, ``at``]: ``since`` is
    the previous sweep's instant."""
    result = SweepResult()
    for key in store.memberships.due_users(since, at):
        user = store.users.load_user(key)
        if user.due is None or user.due.due > at:
            continue  # in the same hour but not yet due: the next sweep takes it
        result.users_read += 1
        result.changes += reevaluate(store, segments, user, at, "sweep")
    return result


def sweep_everyone(
    store: Storage, segments: SegmentSet, at: float, part: int = 0, parts: int = 1
) -> SweepResult:
    """Re-evaluate every user of one part of a parallel scan at ``at``."""
    result = SweepResult()
    for user in store.users.scan_users(part, parts):
        result.users_read += 1
        result.changes += reevaluate(store, segments, user, at, "sweep")
    return result


def run_sweep(
    store: Storage,
    segments: SegmentSet,
    at: float,
    clock: Clock,
    *,
    full: bool = False,
    part: int = 0,
    parts: int = 1,
) -> SweepRun:
    """One scheduled sweep at ``at``: full when asked, on the first run, or when a rule's version
    changed since the last full sweep; otherwise only the users that fell due since the last one.
    The run is recorded only when it completes, so a crashed sweep is redone from the same point."""
    started = clock()
    # Changes recorded before this sweep whose events were not delivered: announce them now. Those
    # of the last minute may still be on their way from the call that recorded them.
    announce(store, store.memberships.unpublished(until=at - OUTBOX_GRACE_SECONDS))
    deployed = definition_versions(segments)
    last = store.figures.last_sweep()
    full = full or last is None or last.definitions != deployed
    if full:
        result = sweep_everyone(store, segments, at, part, parts)
    else:
        assert last is not None
        result = sweep_due(store, segments, min(last.at, at), at)
    run = SweepRun(
        kind="full" if full else "steady",
        at=at,
        started=started,
        finished=clock(),
        users_read=result.users_read,
        changes=len(result.changes),
        definitions=deployed,
    )
    # A part of a fanned-out full sweep is not the whole: the coordinator records the full run.
    if parts == 1:
        store.figures.record_sweep(run)
    return run
