"""The steady sweep reads only the users that fell due, and finds exactly what re-evaluating
everyone finds: over random users, sessions and sweep instants, two stores fed the same data end
every sweep with the same memberships, one swept by the due index, the other in full."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl import load_segments
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import SECONDS_PER_DAY, format_instant, parse_instant
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from kudos.segments.sweep import sweep_due, sweep_everyone
from kudos.store.memory import MemoryStore

SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)
SETTINGS = Settings()
START = parse_instant("2026-11-01T09:30:00Z")

users = st.lists(
    st.tuples(
        st.lists(st.floats(min_value=0, max_value=29.9), min_size=0, max_size=16),  # days before START
        st.sampled_from([None, "opted_in", "unsubscribed"]),
    ),
    min_size=1,
    max_size=6,
)
# Gaps between sweeps: minutes to weeks, so that windows slide, last_session ages out, hours repeat.
gaps = st.lists(st.floats(min_value=60, max_value=12 * SECONDS_PER_DAY), min_size=1, max_size=8)


def memberships(store: MemoryStore) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for records in store.users.partitions.values():
        for record in records.values():
            segment = getattr(record, "segment", None)
            if segment is not None:
                found.setdefault(segment, set())
    for user in store.users.scan_users():
        for name in user.memberships:
            found.setdefault(name, set()).add(user.key.token)
    return {name: members for name, members in found.items() if members}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(users=users, gaps=gaps)
def test_sweeping_the_due_users_finds_every_change_a_full_sweep_finds(users, gaps) -> None:
    by_due, in_full = MemoryStore(), MemoryStore()
    for store in (by_due, in_full):
        for index, (days_back, subscription) in enumerate(users):
            sessions = [
                {
                    "session_id": f"s-{index}-{n}",
                    "device_id": f"d-{index}",
                    "user_id": f"u-{index}",
                    "started_at": format_instant(START - back * SECONDS_PER_DAY),
                }
                for n, back in enumerate(days_back)
            ]
            if sessions:
                ingest_sessions(store, SEGMENTS, SETTINGS, START, {"sessions": sessions})
            if subscription is not None:
                body = {"attributes": [{"external_id": f"u-{index}", "push_subscribe": subscription}]}
                track_users(store, SEGMENTS, SETTINGS, START, body)
    assert memberships(by_due) == memberships(in_full)
    previous = at = START
    read_by_due = read_in_full = 0
    for gap in gaps:
        at += gap
        read_by_due += sweep_due(by_due, SEGMENTS, previous, at).users_read
        read_in_full += sweep_everyone(in_full, SEGMENTS, at).users_read
        assert memberships(by_due) == memberships(in_full), f"after the sweep at {format_instant(at)}"
        previous = at
    assert read_by_due <= read_in_full
