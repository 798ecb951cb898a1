"""What a compiled rule sees besides the profile: the evaluation instant and the other segments."""

from __future__ import annotations

import hashlib

from dsl.timeutil import SECONDS_PER_DAY

RANDOM_BUCKETS = 10_000


class EvalContext:
    """One evaluation instant, plus the memberships already decided at it (for in_segment) and,
    when forecasting, the next-change bounds of those segments (dsl.forecast).

    `at_day` is kept beside `at` because every window needs it and a division per clause per
    profile is measurable. Memberships belong to one profile: make a context per profile, or
    clear `memberships` before reusing one.
    """

    __slots__ = ("at", "at_day", "memberships", "next_changes")

    def __init__(self, at: float, memberships: dict[str, bool] | None = None) -> None:
        self.at = float(at)
        self.at_day = int(self.at // SECONDS_PER_DAY)
        self.memberships: dict[str, bool] = {} if memberships is None else memberships
        self.next_changes: dict[str, float | None] = {}

    def __repr__(self) -> str:
        return f"EvalContext(at={self.at!r}, memberships={self.memberships!r})"


def random_bucket(key: str) -> int:
    """A stable, uniform bucket 0..9999 for a user key: the same in every process and release
    (Python's own hash() is salted per process, so it cannot be used)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % RANDOM_BUCKETS
