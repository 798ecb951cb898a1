"""Figures and session bookkeeping on the fake: what `make mutants` found no unit test pinned.

Rollups of final days (the 31-day acceptance window + 1), the report's range rules, the session
counters (duplicates, ends added later, first and last sessions) and the attributes sessions report.
"""

from __future__ import annotations

import pytest

from dsl import load_segments
from kudos.core.errors import BadRequest
from kudos.core.identity import UserKey
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import day_of, format_day, format_instant, parse_instant
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from kudos.metrics.active_users import active_users_report, finalize_days
from kudos.store.memory import MemoryStore
from kudos.store.ports import StoredSession

NOW = parse_instant("2026-11-22T12:00:00Z")
TODAY = day_of(NOW)
SETTINGS = Settings()
SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)
DAY = 86400


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def session(sid: str, started: float, user: str = "u-1", **extra: str) -> dict[str, str]:
    return {
        "session_id": sid,
        "device_id": "d-1",
        "user_id": user,
        "started_at": format_instant(started),
        **extra,
    }


def put_session(store: MemoryStore, day: int, sid: str, aid: str) -> None:
    """A session stored directly: ingest refuses days this old."""
    store.activity.insert_session(StoredSession(day, sid, aid, day * DAY + 3600.0, None), 0)


def report(store: MemoryStore, first: int | None, last: int | None) -> list[dict]:
    return active_users_report(
        store,
        SETTINGS,
        NOW,
        None if first is None else format_day(first),
        None if last is None else format_day(last),
    )["days"]


# --- final days and their rollups ----------------------------------------------------------------


def test_a_day_is_final_from_32_days_back_and_kept_as_it_was(store: MemoryStore) -> None:
    for day in (TODAY - 33, TODAY - 32, TODAY - 31):
        put_session(store, day, f"s{day}", "a-1")
    days = report(store, TODAY - 33, TODAY - 31)
    assert [d["dau"] for d in days] == [1, 1, 1]
    # 30 days of acceptance + 1 (a session may be 1 day ahead of its day): day today-32 is final.
    assert sorted(store.figures.rollups) == [TODAY - 33, TODAY - 32]
    # A final day's figures never change; the others are computed from what is stored now.
    for day in (TODAY - 33, TODAY - 32, TODAY - 31):
        put_session(store, day, f"late{day}", "a-2")
    assert [d["dau"] for d in report(store, TODAY - 33, TODAY - 31)] == [1, 1, 2]


def test_a_rollup_between_days_to_compute_is_kept_and_the_others_computed(store: MemoryStore) -> None:
    for day in (TODAY - 42, TODAY - 41, TODAY - 40):
        put_session(store, day, f"s{day}", "a-1")
    report(store, TODAY - 41, TODAY - 41)
    assert [d["date"] for d in report(store, TODAY - 42, TODAY - 40)] == [
        format_day(TODAY - 42),
        format_day(TODAY - 41),
        format_day(TODAY - 40),
    ]
    assert sorted(store.figures.rollups) == [TODAY - 42, TODAY - 41, TODAY - 40]


def test_finalize_days_keeps_the_7_days_that_just_became_final(store: MemoryStore) -> None:
    put_session(store, TODAY - 32, "s", "a-1")
    kept = finalize_days(store, SETTINGS, NOW)
    assert [f.day for f in kept] == list(range(TODAY - 38, TODAY - 31))
    assert sorted(store.figures.rollups) == list(range(TODAY - 38, TODAY - 31))
    assert store.figures.rollups[TODAY - 32].dau == 1


def test_mau_reaches_exactly_29_days_before_the_first_day_asked(store: MemoryStore) -> None:
    put_session(store, TODAY - 29, "in", "a-1")
    put_session(store, TODAY - 30, "out", "a-2")
    [today] = report(store, TODAY, TODAY)
    assert (today["mau"], today["wau"], today["dau"]) == (1, 0, 0)
    assert today["stickiness"] == 0


# --- the report's range ----------------------------------------------------------------------------


def test_the_report_defaults_to_the_30_days_to_today(store: MemoryStore) -> None:
    days = report(store, None, None)
    assert [d["date"] for d in days] == [format_day(day) for day in range(TODAY - 29, TODAY + 1)]
    assert set(days[0]) == {"date", "dau", "wau", "mau", "new_users", "sessions", "stickiness"}
    # No active user: no stickiness, rather than a division by zero.
    assert {(d["mau"], d["stickiness"]) for d in days} == {(0, 0)}


def test_the_report_stops_at_today(store: MemoryStore) -> None:
    days = report(store, TODAY - 1, TODAY + 5)
    assert [d["date"] for d in days] == [format_day(TODAY - 1), format_day(TODAY)]
    assert [d["date"] for d in report(store, None, TODAY - 3)][-1] == format_day(TODAY - 3)
    assert len(report(store, None, TODAY - 3)) == 30


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (
            TODAY + 1,
            None,
            "from: 2026-11-23 is after today (2026-11-22); there are no figures for days to come",
        ),
        (TODAY - 1, TODAY - 2, "from: after to"),
        (TODAY - 366, TODAY, "to: at most 366 days per request"),
    ],
)
def test_a_range_it_cannot_answer_is_a_bad_request(
    store: MemoryStore, first: int, last: int | None, message: str
) -> None:
    with pytest.raises(BadRequest) as raised:
        report(store, first, last)
    assert str(raised.value) == message


def test_366_days_is_the_longest_range(store: MemoryStore) -> None:
    assert len(report(store, TODAY - 365, TODAY)) == 366


def test_a_date_that_is_not_one_is_named(store: MemoryStore) -> None:
    with pytest.raises(BadRequest, match=r"^from: "):
        active_users_report(store, SETTINGS, NOW, "2026-13-01", None)
    with pytest.raises(BadRequest, match=r"^to: "):
        active_users_report(store, SETTINGS, NOW, None, "yesterday")


# --- sessions: counters and the answer ------------------------------------------------------------


def test_the_answer_counts_new_sessions_and_duplicates(store: MemoryStore) -> None:
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("a", NOW - 600)]})
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("b", NOW - 500)]})
    body = {
        "sent_at": format_instant(NOW - 3600.5),
        "sessions": [session("a", NOW - 4200), session("b", NOW - 4100), session("c", NOW - 4000)],
    }
    # Received 0.49 ms after NOW: the offset is rounded to the millisecond.
    answer = ingest_sessions(store, SEGMENTS, SETTINGS, NOW + 0.00049, body).to_json()
    assert answer == {
        "message": "success",
        "sessions_processed": 3,
        "new_sessions": 1,
        "duplicates": 2,
        "errors": [],
        "clock_offset_seconds": 3600.5,
    }
    plain = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("d", NOW - 60)]}).to_json()
    assert "clock_offset_seconds" not in plain


def test_a_body_without_sessions_or_with_a_bad_sent_at_is_refused(store: MemoryStore) -> None:
    with pytest.raises(BadRequest, match=r"^sessions: is required$"):
        ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {})
    with pytest.raises(BadRequest, match=r"^sent_at: "):
        ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sent_at": "noon", "sessions": []})


def test_a_duplicate_brings_the_end_the_stored_copy_lacks_and_changes_no_other(store: MemoryStore) -> None:
    started = NOW - 3600
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("a", started)]})
    ingest_sessions(
        store,
        SEGMENTS,
        SETTINGS,
        NOW,
        {"sessions": [session("b", started, ended_at=format_instant(NOW - 60))]},
    )
    ended = {"ended_at": format_instant(NOW - 1800)}
    for sid in ("a", "b"):
        ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session(sid, started, **ended)]})
    stored = store.activity.sessions
    assert stored[(TODAY, "a")].ended == NOW - 1800
    assert stored[(TODAY, "b")].ended == NOW - 60
    assert stored[(TODAY, "a")].started == started
    # One session counted for each, on the profile too.
    assert store.users.load_user(UserKey.of_user("u-1")).activity.sessions_total == 2


def test_sessions_keep_the_profiles_first_and_last_session(store: MemoryStore) -> None:
    ingest_sessions(
        store,
        SEGMENTS,
        SETTINGS,
        NOW,
        {"sessions": [session("a", NOW - 2 * DAY), session("b", NOW - 2 * DAY + 60)]},
    )
    ingest_sessions(
        store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("c", NOW - 5 * DAY), session("d", NOW - 60)]}
    )
    activity = store.users.load_user(UserKey.of_user("u-1")).activity
    assert (activity.first_session, activity.last_session) == (NOW - 5 * DAY, NOW - 60)
    assert activity.first_active_day == TODAY - 5
    assert activity.session_days == {TODAY - 5: 1, TODAY - 2: 2, TODAY: 1}
    assert activity.sessions_total == 4
    sessions = store.activity.sessions
    assert {sessions[key].aid for key in sessions} == {activity.aid}


# --- attributes a session reports -------------------------------------------------------------------


def test_the_newest_session_reports_the_standard_attributes(store: MemoryStore) -> None:
    body = {
        "sessions": [
            session("new", NOW - 60, platform="android", country="FR"),
            session("old", NOW - 3600, platform="ios", language="fr"),
        ]
    }
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    standard = store.users.load_user(UserKey.of_user("u-1")).to_profile().standard
    assert (standard["platform"], standard["country"], standard["language"]) == ("android", "FR", "fr")
    # A session uploaded late, older than the latest one known, reports nothing...
    ingest_sessions(
        store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("cached", NOW - 7200, platform="web")]}
    )
    # ...and one starting with the latest known one does.
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("twin", NOW - 60, country="DE")]})
    standard = store.users.load_user(UserKey.of_user("u-1")).to_profile().standard
    assert (standard["platform"], standard["country"]) == ("android", "DE")


def test_attributes_the_backend_set_later_win_over_an_older_session(store: MemoryStore) -> None:
    ingest_sessions(
        store, SEGMENTS, SETTINGS, NOW - 7200, {"sessions": [session("a", NOW - 7300, country="FR")]}
    )
    track_users(
        store, SEGMENTS, SETTINGS, NOW - 3600, {"attributes": [{"external_id": "u-1", "country": "ES"}]}
    )
    # A session that started before the backend's update reports what was true before it...
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("b", NOW - 5000, country="IT")]})
    assert store.users.load_user(UserKey.of_user("u-1")).to_profile().standard["country"] == "ES"
    # ...one that started at or after it reports what is true now.
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, {"sessions": [session("c", NOW - 3600, country="PT")]})
    assert store.users.load_user(UserKey.of_user("u-1")).to_profile().standard["country"] == "PT"


# --- ends and duplicates, including across midnight ---------------------------------------------


def test_an_end_is_corrected_by_the_clock_error_like_the_start(store: MemoryStore) -> None:
    body = {
        "sent_at": format_instant(NOW - 3600),  # the device is an hour slow
        "sessions": [session("a", NOW - 3 * 3600, ended_at=format_instant(NOW - 2 * 3600))],
    }
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    stored = store.activity.sessions[(TODAY, "a")]
    assert (stored.started, stored.ended) == (NOW - 2 * 3600, NOW - 3600)


def test_an_end_before_the_start_is_refused_and_an_end_at_the_start_is_not(store: MemoryStore) -> None:
    body = {
        "sessions": [
            session("a", NOW - 60, ended_at=format_instant(NOW - 61)),
            session("b", NOW - 60, ended_at=format_instant(NOW - 60)),
        ]
    }
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    assert [error.to_json() for error in result.errors] == [
        {
            "type": "sessions[0].ended_at: before started_at",
            "input_array": "sessions",
            "index": 0,
            "field": "sessions[0].ended_at",
            "message": "sessions[0].ended_at: before started_at",
        }
    ]
    assert result.new_sessions == 1


def test_a_copy_in_the_same_batch_brings_the_end_the_first_lacks(store: MemoryStore) -> None:
    end = format_instant(NOW - 30)
    body = {
        "sessions": [
            session("a", NOW - 60),
            session("a", NOW - 60, ended_at=end),
            session("a", NOW - 60),
            session("b", NOW - 60, ended_at=end),
            session("b", NOW - 60, ended_at=format_instant(NOW - 10)),
        ]
    }
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    assert (result.new_sessions, result.duplicates, result.errors) == (2, 0, [])
    assert store.activity.sessions[(TODAY, "a")].ended == NOW - 30
    assert store.activity.sessions[(TODAY, "b")].ended == NOW - 30


def test_copies_across_midnight_are_duplicates_and_bring_their_end(store: MemoryStore) -> None:
    late = parse_instant("2026-11-21T23:50:00Z")
    early = parse_instant("2026-11-22T00:10:00Z")
    first = {"sessions": [session("a", late), session("b", early)]}
    ingest_sessions(store, SEGMENTS, SETTINGS, NOW, first)
    # Uploaded again with a clock error that moves each across midnight, now with their ends.
    body = {
        "sent_at": format_instant(NOW - 20 * 60),
        "sessions": [
            session("a", late, ended_at=format_instant(late + 60)),  # corrected: 00:10 on the 22nd
        ],
    }
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    body = {
        "sent_at": format_instant(NOW + 20 * 60),
        "sessions": [
            # Corrected: 23:50 on the 21st, ending at 00:10, the start kept.
            session("b", early, ended_at=format_instant(early + 20 * 60)),
            session("a", late + 20 * 60),  # corrected: 23:50 on the 21st, its own day
        ],
    }
    again = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)
    assert (result.new_sessions, result.duplicates) == (0, 1)
    assert (again.new_sessions, again.duplicates) == (0, 2)
    sessions = store.activity.sessions
    assert sorted(sessions) == [(TODAY - 1, "a"), (TODAY, "b")]
    # Each end as its copy's clock correction puts it; an end at the kept start is one.
    assert sessions[(TODAY - 1, "a")].ended == late + 20 * 60 + 60
    assert sessions[(TODAY, "b")].ended == early
    assert store.users.load_user(UserKey.of_user("u-1")).activity.sessions_total == 2
