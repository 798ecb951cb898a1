"""Changing user records safely: read, compute in Python, write back guarded by version.

Every ingest path changes records through ``apply_updates``: a change is a pure function of the
record as stored (or None when there is none yet), so a write that loses a race is simply
recomputed from a fresh read.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kudos.core.identity import UserKey
from kudos.core.records import Record, UserRecords
from kudos.store.ports import Slot, UserRecordsPort

# Given the stored record (None if absent), the record to store, or None to leave it as it is.
Change = Callable[[Record | None], Record | None]

# A write that loses a race is recomputed and retried; past this many losses the request is a 503.
MAX_ATTEMPTS = 8


class ConcurrentUpdateError(RuntimeError):
    """A record kept changing under us; the request can be retried as a whole."""


@dataclass(slots=True)
class Outcome:
    before: Record | None
    after: Record


def new_aid() -> str:
    """A random activity id: links a profile to its activity without naming the user."""
    return secrets.token_urlsafe(9)


def apply_updates(
    users: UserRecordsPort, changes: dict[Slot, Change], first_read: dict[Slot, Record] | None = None
) -> dict[Slot, Outcome]:
    """Apply every change; the stored record before and after, for each slot that was written.

    ``first_read``: a strongly consistent read the caller just made of every slot in ``changes``
    (absent = not stored), used instead of reading again on the first attempt.
    """
    outcomes: dict[Slot, Outcome] = {}
    pending = dict(changes)
    for attempt in range(MAX_ATTEMPTS):
        current = first_read if attempt == 0 and first_read is not None else users.get_records(pending)
        conflicts: dict[Slot, Change] = {}
        for slot, change in pending.items():
            stored = current.get(slot)
            before = copy.deepcopy(stored)
            after = change(stored)
            if after is None:
                continue
            if users.save(slot[0], after):
                outcomes[slot] = Outcome(before, after)
            else:
                conflicts[slot] = change
        if not conflicts:
            return outcomes
        pending = conflicts
    raise ConcurrentUpdateError(f"{len(pending)} records changed on every one of {MAX_ATTEMPTS} attempts")


class UsersInHand:
    """The records of the users one ingest call touches, read once (one Query per user) and kept
    up to date with what the call writes, so that their segments are re-evaluated without a
    second read."""

    def __init__(self, users: UserRecordsPort, keys: Iterable[UserKey]) -> None:
        self.records: dict[UserKey, UserRecords] = {key: users.load_user(key) for key in dict.fromkeys(keys)}

    def first_read(self, slots: Iterable[Slot]) -> dict[Slot, Record]:
        """What ``apply_updates`` would read first, from the records in hand."""
        found: dict[Slot, Record] = {}
        for user, key in slots:
            record = self.records[user].get(key)
            if record is not None:
                found[(user, key)] = copy.deepcopy(record)
        return found

    def absorb(self, outcomes: dict[Slot, Outcome]) -> None:
        for (user, _), outcome in outcomes.items():
            self.records[user].add(copy.deepcopy(outcome.after))

    def update(self, changes: dict[Slot, Change], users: UserRecordsPort) -> dict[Slot, Outcome]:
        """``apply_updates`` from the records in hand, which then hold what was written."""
        outcomes = apply_updates(users, changes, first_read=self.first_read(changes))
        self.absorb(outcomes)
        return outcomes
