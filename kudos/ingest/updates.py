"""Changing user records safely: read, compute in Python, write back guarded by version.

Every ingest path changes records through ``apply_updates``: a change is a pure function of the
record as stored (or None when there is none yet), so a write that loses a race is simply
recomputed from a fresh read.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from kudos.core.records import Record
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
