"""The domain on the in-memory fake of the storage ports: fast, no network.

The same behaviours are exercised through the handlers on moto and DynamoDB Local in
tests/functional/; tests/functional/test_store_ports.py keeps the fake true to DynamoDB. These pin
the edges where a one-line slip changes a figure: the acceptance window, bad items between good
ones, dedup, identify's merge, delete.
"""

from __future__ import annotations

import pytest

from dsl import load_segments
from kudos.core.identity import UserKey
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import SECONDS_PER_DAY, day_of, format_instant, parse_instant
from kudos.ingest import sessions as sessions_module
from kudos.ingest.push import register_token
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from kudos.ingest.users import delete_users, identify_users
from kudos.metrics.active_users import active_users_report
from kudos.store.capacity import write_units
from kudos.store.codec import encode
from kudos.store.memory import MemoryStore

NOW = parse_instant("2026-11-22T12:00:00Z")
SETTINGS = Settings()
SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)
MINUTE = 60


def session(sid: str, started: float, device: str = "d-1", user: str | None = None) -> dict[str, str]:
    item = {"session_id": sid, "device_id": device, "started_at": format_instant(started)}
    if user:
        item["user_id"] = user
    return item


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def figures(store: MemoryStore, date: str) -> dict[str, float]:
    days = active_users_report(store, SETTINGS, NOW, date, date)["days"]
    return dict(days[0])


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (-SETTINGS.session_max_age_days * SECONDS_PER_DAY - 10 * MINUTE, False),
        (-SETTINGS.session_max_age_days * SECONDS_PER_DAY + 10 * MINUTE, True),
        (SETTINGS.session_max_future_days * SECONDS_PER_DAY - 10 * MINUTE, True),
        (SETTINGS.session_max_future_days * SECONDS_PER_DAY + 10 * MINUTE, False),
    ],
)
def test_the_acceptance_window_edges(store: MemoryStore, offset: float, accepted: bool) -> None:
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("s", NOW + offset)]})
    assert result.new_sessions == int(accepted)
    assert len(result.errors) == int(not accepted)


def test_bad_items_between_good_ones_lose_nothing(store: MemoryStore) -> None:
    body = {
        "sessions": [
            session("a", NOW - 3600),
            {"session_id": "bad", "device_id": "d-1"},
            session("b", NOW - 7200),
            session("c", NOW - 40 * SECONDS_PER_DAY),
            session("d", NOW - 60),
        ]
    }
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    assert result.new_sessions == 3
    assert [error.index for error in result.errors] == [1, 3]
    assert store.users.load_user(UserKey.of_device("d-1")).activity.sessions_total == 3


def test_a_session_counts_once_however_often_it_comes(store: MemoryStore) -> None:
    body = {"sessions": [session("a", NOW - 3600, user="u-1")]}
    for _ in range(3):
        ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    assert figures(store, "2026-11-22")["sessions"] == 1
    assert store.users.load_user(UserKey.of_user("u-1")).activity.sessions_total == 1


def test_a_hash_collision_never_drops_a_new_session(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The activity record keeps short hashes of the sessions it counted (for retries and racing
    # copies); a first write that wins consults none of them, so even every hash alike loses nothing.
    monkeypatch.setattr(sessions_module, "counted_mark", lambda session_id: "AAAA")
    for index in range(3):
        body = {"sessions": [session(f"s-{index}", NOW - 3600 * (index + 1), user="u-1")]}
        assert ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body).new_sessions == 1
    assert store.users.load_user(UserKey.of_user("u-1")).activity.sessions_total == 3


def test_the_activity_record_stays_within_one_write_unit_at_200_sessions_a_day(store: MemoryStore) -> None:
    # Every new session rewrites it, billed per started KB; it remembers each session counted in
    # the last day (docs/data-model.md), here 200 spread over 29 days, all received within an hour.
    for index in range(200):
        started = NOW - (index % 29) * SECONDS_PER_DAY - 3600
        ingest_sessions(
            store, SEGMENTS, SETTINGS, NOW, {"sessions": [session(f"s-{index}", started, user="u-1")]}
        )
    user = UserKey.of_user("u-1")
    activity = store.users.load_user(user).activity
    assert activity.sessions_total == len(activity.counted) == 200
    assert write_units(encode(user, activity)) == 1


def test_sent_at_shifts_sessions_by_the_device_clock_error(store: MemoryStore) -> None:
    # The device runs 3 hours fast: its 02:00 on the 22nd happened at 23:00 on the 21st.
    body = {"sent_at": format_instant(NOW + 3 * 3600), "sessions": [session("a", NOW - 10 * 3600 + 3 * 3600)]}
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    activity = store.users.load_user(UserKey.of_device("d-1")).activity
    assert activity.first_session == NOW - 10 * 3600
    assert day_of(activity.first_session) == day_of(NOW)


def test_identify_merges_the_anonymous_profile_once(store: MemoryStore) -> None:
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("a", NOW - 7200, device="d-7")]})
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("b", NOW - 3600, user="u-7")]})
    identify = {"aliases_to_identify": [{"device_id": "d-7", "external_id": "u-7"}]}
    identify_users(store, SEGMENTS, NOW, identify)
    identify_users(store, SEGMENTS, NOW, identify)
    merged = store.users.load_user(UserKey.of_user("u-7")).activity
    assert merged.sessions_total == 2
    assert merged.first_session == NOW - 7200
    assert not store.users.load_user(UserKey.of_device("d-7")).records()
    # Later device-only data reaches the user.
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("c", NOW - 60, device="d-7")]})
    assert store.users.load_user(UserKey.of_user("u-7")).activity.sessions_total == 3


def test_attributes_already_set_on_the_identified_profile_win(store: MemoryStore) -> None:
    track_users(
        store,
        SEGMENTS,
        SETTINGS,
        NOW,
        {"attributes": [{"device_id": "d-7", "first_name": "Anon", "plan": "free"}]},
    )
    track_users(store, SEGMENTS, SETTINGS, NOW, {"attributes": [{"external_id": "u-7", "first_name": "Ana"}]})
    identify_users(
        store, SEGMENTS, NOW, {"aliases_to_identify": [{"device_id": "d-7", "external_id": "u-7"}]}
    )
    profile = store.users.load_user(UserKey.of_user("u-7")).to_profile()
    assert profile.standard["first_name"] == "Ana"
    assert profile.custom["plan"] == "free"


def test_delete_takes_the_user_its_aliases_and_token_owners(store: MemoryStore) -> None:
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("a", NOW - 60, device="d-7")]})
    identify_users(
        store, SEGMENTS, NOW, {"aliases_to_identify": [{"device_id": "d-7", "external_id": "u-7"}]}
    )
    register_token(
        store,
        SEGMENTS,
        NOW,
        {"device_id": "d-8", "user_id": "u-7", "platform": "ios", "token": "t", "enabled": True},
    )
    result = delete_users(store, NOW, {"external_ids": ["u-7", 5]})
    assert result["deleted"] == 1
    assert [error["index"] for error in result["errors"]] == [1]
    assert not store.users.load_user(UserKey.of_user("u-7")).records()
    assert store.pointers.resolve_anonymous([UserKey.of_device("d-7")]) == {}
    assert store.pointers.device_owner("d-8") is None
    # The day's figures stay: the activity table never named the user.
    assert figures(store, "2026-11-22")["dau"] == 1


def test_track_makes_a_user_active_today_and_new_once(store: MemoryStore) -> None:
    body = {"events": [{"external_id": "u-1", "name": "claimed", "time": format_instant(NOW - 60)}]}
    track_users(store, SEGMENTS, SETTINGS, NOW, body)
    track_users(store, SEGMENTS, SETTINGS, NOW, body)
    day = figures(store, "2026-11-22")
    assert (day["dau"], day["new_users"], day["sessions"]) == (1, 1, 0)
    assert store.users.load_user(UserKey.of_user("u-1")).events["claimed"].total == 2
