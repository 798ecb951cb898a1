"""The scheduled sweep: what time alone changes (campaigns.md "Membership changes", 3).

It is also when campaigns fire what time alone brings: a new `send on entry` campaign's first
triggers, the scheduled instants of the others, and the sends whose quiet hours ended.

A steady sweep reads only the users whose due instant has come since the last sweep (the due
index); a full sweep reads everyone (the first sweep, and whenever a rule's version changed).
Both re-evaluate at the sweep's instant and write only differences, so re-running, overlapping
or resuming after a crash records each change once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsl import SegmentSet
from kudos.campaigns.triggers import fire_campaigns, sweep_pending
from kudos.core.clock import Clock
from kudos.segments.membership import announce, definition_versions, reevaluate
from kudos.store.ports import FullSweepPlan, MembershipChange, Storage, SweepRun

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
    parts: int = 1,
) -> SweepRun | None:
    """One scheduled sweep at ``at``: full when asked, on the first run, or when a rule's version
    changed since the last full sweep; otherwise only the users that fell due since the last one.

    With ``parts`` > 1 a full sweep is fanned out: one message per Scan part goes to the sweep queue
    (run_sweep_part takes each), and meanwhile the users that fell due are still swept. A run is
    recorded only when it completes, so a crashed sweep is redone from the same point. None: a
    full sweep was fanned out and nothing has completed yet (the parts record it when done).
    """
    started = clock()
    # Changes recorded before this sweep whose events were not delivered: announce them now. Those
    # of the last minute may still be on their way from the call that recorded them.
    if store.events.enabled:
        announce(store, store.memberships.unpublished(until=at - OUTBOX_GRACE_SECONDS))
    deployed = definition_versions(segments)
    last = store.figures.last_sweep()
    needs_full = full or last is None or last.definitions != deployed
    if needs_full and parts > 1:
        plan = store.figures.full_sweep_plan()
        if full or plan is None or plan.definitions != deployed:
            store.figures.begin_full_sweep(FullSweepPlan(at, started, parts, deployed))
            store.sweep_queue.send_parts(at, parts)
        if last is None:
            return None
        # Until the parts are done, the last full sweep's versions stand: time-driven changes go on.
        needs_full, deployed = False, last.definitions
    if needs_full:
        result = sweep_everyone(store, segments, at)
    else:
        assert last is not None
        result = sweep_due(store, segments, min(last.at, at), at)
    firing = fire_campaigns(
        store,
        segments,
        at,
        lambda user: reevaluate(store, segments, user, at, "sweep"),
        last.at if last is not None else None,
    )
    requeued = sweep_pending(store, at)
    run = SweepRun(
        kind="full" if needs_full else "steady",
        at=at,
        started=started,
        finished=clock(),
        users_read=result.users_read,
        changes=len(result.changes),
        definitions=deployed,
        triggers=firing.triggers,
        requeued=requeued,
    )
    store.figures.record_sweep(run)
    return run


def run_sweep_part(
    store: Storage, segments: SegmentSet, at: float, part: int, parts: int, clock: Clock
) -> SweepRun | None:
    """One part of a fanned-out full sweep. The part that completes the plan records the full run;
    a part of a superseded or finished sweep (an SQS redelivery) does nothing."""
    plan = store.figures.full_sweep_plan()
    if plan is None or plan.at != at:
        return None
    result = sweep_everyone(store, segments, at, part, parts)
    plan = store.figures.finish_part(at, part, result.users_read, len(result.changes))
    if plan is None or len(plan.parts_done) < plan.parts:
        return None
    run = SweepRun("full", at, plan.started, clock(), plan.users_read, plan.changes, plan.definitions)
    store.figures.record_sweep(run)
    store.figures.end_full_sweep(at)
    return run
