"""Edges a one-line slip moves, pinned with the documented numbers (docs/api.md), on the fake.

Three hand-planted mistakes once survived the suite: the 30-day acceptance limit moved to 29 or 31
days, and a ``continue`` after a bad item turned into ``break``. So the windows are checked ten
minutes either side of 30 days back and 1 day ahead on every route that has a window, with literal
days rather than the settings (a changed default would move the test with it), and every batch
route gets bad items between good ones. ``make mutants`` runs tests/unit against such slips.
"""

from __future__ import annotations

from typing import Any

import pytest

from dsl import load_segments
from kudos.core.identity import UserKey
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import format_instant, parse_instant
from kudos.ingest.push import record_push_events
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from kudos.ingest.users import delete_users, identify_users
from kudos.metrics.active_users import active_users_report
from kudos.store.memory import MemoryStore

NOW = parse_instant("2026-11-22T12:00:00Z")
SETTINGS = Settings()
SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)
MINUTE = 60
DAY = 86400
# docs/api.md: a session starts at most 30 days before and 1 day after the receive time; events
# and purchases at most 1 day ahead, with no limit in the past.
THIRTY_DAYS_BACK = NOW - 30 * DAY
ONE_DAY_AHEAD = NOW + 1 * DAY
EDGES = {
    "30 days back + 10 min": THIRTY_DAYS_BACK + 10 * MINUTE,
    "30 days back - 10 min": THIRTY_DAYS_BACK - 10 * MINUTE,
    "1 day ahead - 10 min": ONE_DAY_AHEAD - 10 * MINUTE,
    "1 day ahead + 10 min": ONE_DAY_AHEAD + 10 * MINUTE,
}


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def session(sid: str, started: float, device: str = "d-1", user: str | None = None) -> dict[str, str]:
    item = {"session_id": sid, "device_id": device, "started_at": format_instant(started)}
    if user:
        item["user_id"] = user
    return item


def user(store: MemoryStore, user_id: str) -> Any:
    return store.users.load_user(UserKey.of_user(user_id))


# --- the acceptance windows -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edge", "accepted"),
    [
        ("30 days back + 10 min", True),
        ("30 days back - 10 min", False),
        ("1 day ahead - 10 min", True),
        ("1 day ahead + 10 min", False),
    ],
)
def test_a_session_is_accepted_from_30_days_back_to_1_day_ahead(
    store: MemoryStore, edge: str, accepted: bool
) -> None:
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("s", EDGES[edge])]})
    assert result.new_sessions == int(accepted)
    if accepted:
        assert result.errors == []
    else:
        [error] = result.errors
        assert error.field == "sessions[0].started_at"
        limit = "30 days before" if "back" in edge else "1 day after"
        assert f"more than {limit} the server's receive time" in error.problem


def test_the_session_window_applies_after_the_sent_at_correction(store: MemoryStore) -> None:
    # The device clock runs an hour slow: its "30 days back + 10 min" is 50 minutes too early...
    slow = {"sent_at": format_instant(NOW - 3600)}
    inside = ingest_sessions(
        store, SEGMENTS, SETTINGS, NOW, {**slow, "sessions": [session("a", THIRTY_DAYS_BACK - 50 * MINUTE)]}
    )
    # ...and a device an hour fast: its "1 day ahead + 50 min" is within a day once corrected.
    fast = {"sent_at": format_instant(NOW + 3600)}
    ahead = ingest_sessions(
        store, SEGMENTS, SETTINGS, NOW, {**fast, "sessions": [session("b", ONE_DAY_AHEAD + 50 * MINUTE)]}
    )
    assert (inside.new_sessions, inside.errors) == (1, [])
    assert (ahead.new_sessions, ahead.errors) == (1, [])


def push_event(time: float, campaign: str = "c-1", device: str = "d-1", kind: str = "delivered") -> dict:
    return {"type": kind, "device_id": device, "campaign_id": campaign, "time": format_instant(time)}


@pytest.mark.parametrize(
    ("edge", "accepted"),
    [
        # Push events have no limit in the past: a late provider report still counts.
        ("30 days back + 10 min", True),
        ("30 days back - 10 min", True),
        ("1 day ahead - 10 min", True),
        ("1 day ahead + 10 min", False),
    ],
)
def test_a_push_event_is_accepted_up_to_1_day_ahead(store: MemoryStore, edge: str, accepted: bool) -> None:
    result = record_push_events(store, SEGMENTS, SETTINGS, NOW, {"events": [push_event(EDGES[edge])]})
    assert result.events_processed == int(accepted)
    if accepted:
        assert result.errors == []
        assert store.users.load_user(UserKey.of_device("d-1")).campaigns["c-1"].received
    else:
        [error] = result.errors
        assert error.field == "events[0].time"
        assert "more than 1 day after the server's receive time" in error.problem


@pytest.mark.parametrize("array", ["events", "purchases"])
@pytest.mark.parametrize(
    ("edge", "accepted"),
    [
        ("30 days back + 10 min", True),
        ("30 days back - 10 min", True),
        ("1 day ahead - 10 min", True),
        ("1 day ahead + 10 min", False),
    ],
)
def test_track_events_and_purchases_are_accepted_up_to_1_day_ahead(
    store: MemoryStore, array: str, edge: str, accepted: bool
) -> None:
    body = {array: [track_item(array, "u-1", EDGES[edge])]}
    result = track_users(store, SEGMENTS, SETTINGS, NOW, body)
    assert getattr(result, f"{array}_processed") == int(accepted)
    if accepted:
        assert result.errors == []
        stored = user(store, "u-1")
        total = stored.events["claimed"].total if array == "events" else stored.purchases.total
        assert total == 1
    else:
        [error] = result.errors
        assert error.field == f"{array}[0].time"
        assert "more than 1 day after the server's receive time" in error.problem
        assert not user(store, "u-1").records()


def track_item(array: str, user_id: str, time: float) -> dict[str, Any]:
    if array == "events":
        return {"external_id": user_id, "name": "claimed", "time": format_instant(time)}
    return {
        "external_id": user_id,
        "product_id": "gem",
        "currency": "EUR",
        "price": 2.5,
        "time": format_instant(time),
    }


# --- bad items between good ones: every one after a bad item still counts ------------------------


def test_sessions_after_each_kind_of_bad_session_still_count(store: MemoryStore) -> None:
    body = {
        "sessions": [
            session("a", NOW - 3600, user="u-1"),
            {"session_id": "bad", "device_id": "d-1"},  # no started_at
            session("b", NOW - 3500, user="u-2"),
            session("old", THIRTY_DAYS_BACK - 10 * MINUTE, user="u-1"),  # outside the window
            session("c", NOW - 3400, user="u-3"),
            {**session("neg", NOW - 3000, user="u-1"), "ended_at": format_instant(NOW - 4000)},
            session("d", NOW - 3300, user="u-4"),
            session("a", NOW - 3600, user="u-1"),  # the same session twice: one session
            session("e", NOW - 3200, user="u-5"),
        ]
    }
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    assert [error.index for error in result.errors] == [1, 3, 5]
    assert (result.new_sessions, result.duplicates) == (5, 0)
    for user_id in ("u-1", "u-2", "u-3", "u-4", "u-5"):
        assert user(store, user_id).activity.sessions_total == 1, user_id


def test_sessions_after_a_duplicate_still_count(store: MemoryStore) -> None:
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("a", NOW - 3600, user="u-1")]})
    body = {"sessions": [session("a", NOW - 3600, user="u-1"), session("b", NOW - 60, user="u-2")]}
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    assert (result.new_sessions, result.duplicates) == (1, 1)
    assert user(store, "u-2").activity.sessions_total == 1


def test_sessions_after_a_duplicate_across_midnight_still_count(store: MemoryStore) -> None:
    first = parse_instant("2026-11-21T23:50:00Z")
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("a", first, user="u-1")]})
    # Uploaded again by a device 20 minutes slow: corrected, the copy starts at 00:10 the next day.
    body = {
        "sent_at": format_instant(NOW - 20 * MINUTE),
        "sessions": [session("a", first, user="u-1"), session("b", NOW - 3600, user="u-2")],
    }
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    assert (result.new_sessions, result.duplicates) == (1, 1)
    assert user(store, "u-1").activity.sessions_total == 1
    assert user(store, "u-2").activity.sessions_total == 1


def test_push_events_after_bad_ones_still_count(store: MemoryStore) -> None:
    body = {
        "events": [
            push_event(NOW - 60, campaign="c-1"),
            {"type": "delivered", "campaign_id": "c-2", "time": format_instant(NOW)},  # names nobody
            push_event(NOW - 50, campaign="c-3"),
            push_event(ONE_DAY_AHEAD + 10 * MINUTE, campaign="c-4"),  # too far ahead
            push_event(NOW - 40, campaign="c-5"),
            {"type": "exploded", "device_id": "d-1", "time": format_instant(NOW)},  # not a type
            push_event(NOW - 30, campaign="c-6"),
            {"type": "opened", "device_id": "d-1", "time": format_instant(NOW)},  # no campaign_id
            push_event(NOW - 20, campaign="c-7"),
        ]
    }
    result = record_push_events(store, SEGMENTS, SETTINGS, NOW, body)
    assert [error.index for error in result.errors] == [1, 3, 5, 7]
    assert result.events_processed == 5
    campaigns = store.users.load_user(UserKey.of_device("d-1")).campaigns
    assert sorted(campaigns) == ["c-1", "c-3", "c-5", "c-6", "c-7"]


def test_track_attributes_after_bad_ones_still_count(store: MemoryStore) -> None:
    body = {
        "attributes": [
            {"external_id": "u-1", "plan": "gold"},
            "not an object",
            {"external_id": "u-2", "plan": "gold"},
            {"external_id": "u-3", "_bogus_option": True},
            {"external_id": "u-4", "plan": "gold"},
            {"external_id": "u-5", "_update_existing_only": True, "plan": "gold"},  # u-5 does not exist
            {"external_id": "u-6", "plan": "gold"},
        ]
    }
    result = track_users(store, SEGMENTS, SETTINGS, NOW, body)
    assert [error.index for error in result.errors] == [1, 3, 5]
    assert result.attributes_processed == 4
    for user_id in ("u-1", "u-2", "u-4", "u-6"):
        assert user(store, user_id).to_profile().custom["plan"] == "gold", user_id
    for user_id in ("u-3", "u-5"):
        assert not user(store, user_id).records(), user_id


def test_attribute_updates_after_refused_ones_of_the_same_user_still_apply(store: MemoryStore) -> None:
    def strings(tag: str) -> list[str]:
        return [f"{tag}{n:03d}" + "x" * 996 for n in range(60)]  # 60 KB

    body = {
        "attributes": [
            {"external_id": "u-1", "n": 9e125},
            {"external_id": "u-1", "n": {"inc": 9e125}},  # the total cannot be stored
            {"external_id": "u-1", "plan": "gold"},
            {"external_id": "u-1", "big": strings("a")},
            {"external_id": "u-1", "bigger": strings("b")},  # over 100 KB with the first
            {"external_id": "u-1", "tier": "top"},
        ]
    }
    result = track_users(store, SEGMENTS, SETTINGS, NOW, body)
    assert [error.index for error in result.errors] == [1, 4]
    assert result.attributes_processed == 4
    custom = user(store, "u-1").to_profile().custom
    assert (custom["n"], custom["plan"], custom["tier"]) == (9e125, "gold", "top")
    assert "big" in custom
    assert "bigger" not in custom


@pytest.mark.parametrize("array", ["events", "purchases"])
def test_track_events_and_purchases_after_bad_ones_still_count(store: MemoryStore, array: str) -> None:
    body = {
        array: [
            track_item(array, "u-1", NOW - 60),
            {"external_id": "u-9"},  # no name / product, no time
            track_item(array, "u-2", NOW - 60),
            track_item(array, "u-9", ONE_DAY_AHEAD + 10 * MINUTE),
            track_item(array, "u-3", NOW - 60),
            {**track_item(array, "u-9", NOW - 60), "braze_id": "b-1", "external_id": None},
            track_item(array, "u-4", NOW - 60),
            {**track_item(array, "u-9", NOW - 60), "_update_existing_only": True},  # u-9 does not exist
            track_item(array, "u-5", NOW - 60),
        ]
    }
    result = track_users(store, SEGMENTS, SETTINGS, NOW, body)
    assert [error.index for error in result.errors] == [1, 3, 5, 7]
    assert getattr(result, f"{array}_processed") == 5
    for user_id in ("u-1", "u-2", "u-3", "u-4", "u-5"):
        stored = user(store, user_id)
        total = stored.events["claimed"].total if array == "events" else stored.purchases.total
        assert total == 1, user_id
    assert not user(store, "u-9").records()


def test_identify_after_bad_aliases_still_merges(store: MemoryStore) -> None:
    for n in range(1, 5):
        ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session(f"s{n}", NOW - 60, f"d-{n}")]})
    body = {
        "aliases_to_identify": [
            {"device_id": "d-1", "external_id": "u-1"},
            {"device_id": "d-9", "braze_id": "b-9", "external_id": "u-9"},
            {"device_id": "d-2", "external_id": "u-2"},
            {"external_id": "u-9"},  # no anonymous profile
            {"device_id": "d-3", "external_id": "u-3"},
            5,
            {"device_id": "d-4", "external_id": "u-4"},
        ]
    }
    result = identify_users(store, SEGMENTS, NOW, body)
    assert [error.index for error in result.errors] == [1, 3, 5]
    assert result.aliases_processed == 4
    for n in range(1, 5):
        assert user(store, f"u-{n}").activity.sessions_total == 1
        assert not store.users.load_user(UserKey.of_device(f"d-{n}")).records()


def test_delete_after_bad_ids_still_deletes(store: MemoryStore) -> None:
    for n in range(1, 6):
        ingest_sessions(
            store, SEGMENTS, SETTINGS, NOW, {"sessions": [session(f"s{n}", NOW - 60, user=f"u-{n}")]}
        )
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("sd", NOW - 60, device="d-1")]})
    body = {
        "external_ids": ["u-1", 5, "u-2", "", "u-3"],
        "device_ids": [None, "d-1"],
        "braze_ids": ["b-1"],
        "user_aliases": [{"alias_name": "x"}],
        "email_addresses": ["a@example.com"],
    }
    result = delete_users(store, NOW, body)
    assert sorted((error["input_array"], error["index"]) for error in result["errors"]) == [
        ("braze_ids", 0),
        ("device_ids", 0),
        ("email_addresses", 0),
        ("external_ids", 1),
        ("external_ids", 3),
        ("user_aliases", 0),
    ]
    assert result["deleted"] == 4
    for user_id in ("u-1", "u-2", "u-3"):
        assert not user(store, user_id).records(), user_id
    assert not store.users.load_user(UserKey.of_device("d-1")).records()
    for user_id in ("u-4", "u-5"):
        assert user(store, user_id).records(), user_id


def test_every_user_a_track_request_updates_is_active_today(store: MemoryStore) -> None:
    body = {
        "attributes": [{"external_id": "u-1", "plan": "gold"}, {"external_id": "u-2", "plan": "free"}],
        "events": [track_item("events", "u-3", NOW - 60)],
        "purchases": [track_item("purchases", "u-4", NOW - 60)],
    }
    track_users(store, SEGMENTS, SETTINGS, NOW, body)
    [today] = active_users_report(store, SETTINGS, NOW, "2026-11-22", "2026-11-22")["days"]
    assert (today["dau"], today["new_users"], today["sessions"]) == (4, 4, 0)


# --- stickiness: DAU / MAU, with DAU, WAU and MAU all different ---------------------------------


def test_stickiness_is_dau_over_mau(store: MemoryStore) -> None:
    # Today: u-1. Three days ago: u-1, u-2. Twenty days ago: u-3. So DAU 1, WAU 2, MAU 3.
    body = {
        "sessions": [
            session("a", NOW - 60, user="u-1"),
            session("b", NOW - 3 * DAY, user="u-1"),
            session("c", NOW - 3 * DAY, user="u-2"),
            session("d", NOW - 20 * DAY, user="u-3"),
        ]
    }
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    [today] = active_users_report(store, SETTINGS, NOW, "2026-11-22", "2026-11-22")["days"]
    assert (today["dau"], today["wau"], today["mau"]) == (1, 2, 3)
    assert today["stickiness"] == 0.3333
    assert today["sessions"] == 1
