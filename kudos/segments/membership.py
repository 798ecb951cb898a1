"""Dynamic membership: entries and exits found when a user's data changes and when time alone
changes a rule's truth (campaigns.md "Membership changes").

A user is re-evaluated from records already in hand: the ingest call's own, or what the sweep read.
Only differences are written, each entry or exit applied and logged in one transaction, so a
re-run, an overlapping sweep or a race with an ingest call never records a change twice.

Every evaluation also keeps the user's due instant: a lower bound on the next instant at which
time alone may change a membership (dsl: SegmentSet.next_change_all). The steady sweep reads only
the users that fell due; the ingest path writes the due instant only when it moves earlier, so a
session that changes no membership costs no extra write.
"""

from __future__ import annotations

from dataclasses import replace

from dsl import SegmentSet
from kudos.campaigns.triggers import CampaignStates, entry_triggers, queue_sends
from kudos.core.records import DueRecord, MembershipRecord, SendRecord, UserRecords
from kudos.store.ports import ChangeSource, MembershipChange, Storage


def definition_versions(segments: SegmentSet) -> dict[str, str]:
    return {name: segment.version for name, segment in segments.items()}


# Recording a trigger can change what rules on messaging history see (a held-out user is now
# in_control): the user is evaluated again, at most this many times in one call.
MAX_PASSES = 3


def reevaluate(
    store: Storage, segments: SegmentSet, user: UserRecords, at: float, by: ChangeSource
) -> list[MembershipChange]:
    """Evaluate every segment for ``user`` at ``at``; record and return the entries and exits.

    An entry fires the triggers of the `send on entry` campaigns of that audience, recorded in the
    entry's own transaction; the queued ones go to the send queue.
    """
    if not user.exists:
        return exit_everything(store, user, at, by)
    changes: list[MembershipChange] = []
    triggers: list[SendRecord] = []
    states = CampaignStates(store)
    for _ in range(MAX_PASSES):
        due, fired = _evaluate_once(store, segments, states, user, at, by, changes)
        triggers += fired
        if not any(send.status == "held_out" for send in fired):
            break
    _keep_due(store, user, due, at, by)
    queue_sends(store, ((user.key, send) for send in triggers), at)
    announce(store, changes)
    return changes


def _evaluate_once(
    store: Storage,
    segments: SegmentSet,
    states: CampaignStates,
    user: UserRecords,
    at: float,
    by: ChangeSource,
    changes: list[MembershipChange],
) -> tuple[float | None, list[SendRecord]]:
    """One evaluation pass: records the differences (appended to ``changes``) and keeps ``user`` in
    step with what it wrote. The due instant, and the triggers recorded."""
    decided, due = segments.forecast_all(user.to_profile(), at)
    fired: list[SendRecord] = []
    for name, is_member in decided.items():
        definition = segments[name].version
        stored = user.memberships.get(name)
        if is_member == (stored is not None):
            if stored is not None and stored.definition != definition:
                # Still in under a changed rule: the membership now stands on the new version.
                store.users.save(user.key, replace(stored, definition=definition))
            continue
        change = MembershipChange(user.key, name, "entered" if is_member else "exited", at, by, definition)
        sends = entry_triggers(segments, states, user, name, at) if is_member else []
        if not store.memberships.record_change(change, new_records=sends):
            continue
        changes.append(change)
        if is_member:
            user.memberships[name] = MembershipRecord(name, definition, at, version=1)
        else:
            user.memberships.pop(name, None)
        for send in sends:
            user.add(send)
        fired += sends
    return due, fired


def exit_everything(store: Storage, user: UserRecords, at: float, by: ChangeSource) -> list[MembershipChange]:
    """A deleted (or never created) user leaves every segment it was in."""
    changes = []
    for name, membership in user.memberships.items():
        change = MembershipChange(user.key, name, "exited", at, by, membership.definition)
        if store.memberships.record_change(change):
            changes.append(change)
    announce(store, changes)
    return changes


def announce(store: Storage, changes: list[MembershipChange]) -> None:
    """Publish the changes' events; the delivered ones leave the outbox. A change recorded but not
    delivered (a bus outage, a crash right after recording) stays there: the sweep retries it, so
    no change goes unannounced (at least once: consumers de-duplicate by the event's id)."""
    if not changes or not store.events.enabled:
        return
    undelivered = store.events.publish(changes)
    store.memberships.mark_published(change for change in changes if change not in undelivered)


def _keep_due(store: Storage, user: UserRecords, due: float | None, at: float, by: ChangeSource) -> None:
    stored = user.due
    if by == "ingest":
        # A stored due instant that is not later than the new one is still a safe lower bound:
        # the sweep reads the user then, a little early, and stores the exact one.
        if due is None or (stored is not None and at < stored.due <= due):
            return
    elif stored is not None and due is not None and stored.due == due:
        return
    if due is None:
        if stored is not None:
            store.users.delete_record(user.key, stored.key)
        return
    record = DueRecord(due, version=stored.version) if stored is not None else DueRecord(due)
    if store.users.save(user.key, record):
        user.due = record
