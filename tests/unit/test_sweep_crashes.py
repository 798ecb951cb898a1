"""A sweep that dies between any two of its writes, then runs again, ends as one clean run does:
the same memberships, each change logged once, every change announced (at least once)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dsl import load_segments
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import SECONDS_PER_DAY, format_instant, parse_instant
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from kudos.segments.sweep import run_sweep
from kudos.store.memory import MemoryStore

SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)
NOW = parse_instant("2026-11-22T12:00:00Z")
# Late enough that time alone changes several memberships of the population below.
SWEEP_AT = NOW + 8 * SECONDS_PER_DAY
LATER = SWEEP_AT + SECONDS_PER_DAY
WRITES = [
    ("users", "save"),
    ("users", "delete_record"),
    ("memberships", "record_change"),
    ("memberships", "mark_published"),
    ("figures", "record_sweep"),
    ("events", "publish"),
]


class Crash(Exception):
    pass


def populated() -> MemoryStore:
    store = MemoryStore()
    for n in range(6):
        sessions = [
            {
                "session_id": f"s-{n}-{k}",
                "device_id": f"d-{n}",
                "user_id": f"u-{n}",
                "started_at": format_instant(NOW - (k * (n + 1) % 29) * SECONDS_PER_DAY - 3600),
            }
            for k in range(4 + 3 * n)
        ]
        ingest_sessions(store, SEGMENTS, Settings(), NOW, {"sessions": sessions})
        body = {"attributes": [{"external_id": f"u-{n}", "push_subscribe": "opted_in"}]}
        track_users(store, SEGMENTS, Settings(), NOW, body)
    run_sweep(store, SEGMENTS, NOW, lambda: NOW)  # the first, full sweep
    return store


def crash_after(store: MemoryStore, writes: int) -> Callable[[], int]:
    """Make the store raise Crash on its write number ``writes`` (0 = the first); the count so far."""
    count = 0

    for port_name, method_name in WRITES:
        port = getattr(store, port_name)
        original = getattr(port, method_name)

        def counted(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            nonlocal count
            if count == writes:
                count += 1
                raise Crash
            count += 1
            return _original(*args, **kwargs)

        setattr(port, method_name, counted)
    return lambda: count


def state(store: MemoryStore) -> tuple[Any, ...]:
    members = {
        user.key.token: sorted(user.memberships) for user in store.users.scan_users() if user.memberships
    }
    logged = sorted(
        (c.segment, c.user.token, c.change, c.at) for day in store.memberships.log.values() for c in day
    )
    announced = {(c.segment, c.user.token, c.change, c.at) for c in store.events.published}
    return members, logged, announced


def clean_run() -> tuple[tuple[Any, ...], int]:
    store = populated()
    writes = crash_after(store, -1)
    run_sweep(store, SEGMENTS, SWEEP_AT, lambda: SWEEP_AT)
    count = writes()
    run_sweep(store, SEGMENTS, LATER, lambda: LATER)
    return state(store), count


CLEAN, CLEAN_WRITES = clean_run()


def test_the_sweep_changes_something_to_crash_in() -> None:
    _, logged, _ = CLEAN
    assert CLEAN_WRITES >= 6
    assert any(change == "exited" for _, _, change, _ in logged)


@pytest.mark.parametrize("crash_at", range(CLEAN_WRITES))
def test_a_crash_between_any_two_writes_is_repaired_by_running_again(crash_at: int) -> None:
    store = populated()
    crash_after(store, crash_at)
    with pytest.raises(Crash):
        run_sweep(store, SEGMENTS, SWEEP_AT, lambda: SWEEP_AT)
    # The scheduler's retry: the same event, the same instant, no crash this time.
    crash_after(store, -1)
    run_sweep(store, SEGMENTS, SWEEP_AT, lambda: SWEEP_AT)
    run_sweep(store, SEGMENTS, LATER, lambda: LATER)
    assert state(store) == CLEAN
