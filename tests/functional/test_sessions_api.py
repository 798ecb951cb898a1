"""POST /v1/sessions and the figures it feeds, through the real handler, on moto and DynamoDB Local."""

from __future__ import annotations

import pytest

from kudos.core.identity import UserKey
from kudos.core.records import AttributesRecord
from kudos.core.timeutil import parse_date, parse_instant
from kudos.store.codec import stored_size
from tests.apiclient import ApiClient


@pytest.fixture
def api(dynamodb):
    return ApiClient(dynamodb.settings, dynamodb.client, now="2026-11-22T09:00:10Z")


def session(sid, started, device="d-42", user=None, **extra):
    item = {"session_id": sid, "device_id": device, "started_at": started, **extra}
    if user:
        item["user_id"] = user
    return item


def day(figures, date):
    return next(f for f in figures if f["date"] == date)


def test_sent_at_corrects_the_device_clock(api):
    # The device clock is 3 h ahead: its 01:30 on the 21st is 22:30 on the 20th.
    body = {"sent_at": "2026-11-22T12:00:10Z", "sessions": [session("a", "2026-11-21T01:30:00Z", user="u-7")]}
    response = api.post("/v1/sessions", body)
    assert response.status == 201
    assert response.body["new_sessions"] == 1
    assert response.body["clock_offset_seconds"] == -3 * 3600  # the offset applied, reported
    figures = api.active_users("2026-11-20", "2026-11-21")
    assert [f["dau"] for f in figures] == [1, 0]
    profile = api.store.users.load_user(UserKey("u-7", None)).to_profile()
    assert profile.first_session == pytest.approx(parse_date("2026-11-20") * 86400 + 22.5 * 3600)


def test_a_duplicate_never_counts_twice_and_may_add_ended_at(api):
    first = {"sessions": [session("a", "2026-11-20T10:00:00Z", user="u-7")]}
    response = api.post("/v1/sessions", first)
    assert response.body["new_sessions"] == 1
    assert "clock_offset_seconds" not in response.body  # no sent_at: nothing was moved
    again = {"sessions": [session("a", "2026-11-20T10:00:00Z", user="u-7", ended_at="2026-11-20T10:05:00Z")]}
    response = api.post("/v1/sessions", again)
    assert response.body["duplicates"] == 1
    assert response.body["new_sessions"] == 0
    assert day(api.active_users("2026-11-20", "2026-11-20"), "2026-11-20")["sessions"] == 1
    assert api.store.users.load_user(UserKey("u-7", None)).to_profile().sessions.total == 1
    stored = api.store.activity.find_sessions([(parse_date("2026-11-20"), "a")])
    assert stored[(parse_date("2026-11-20"), "a")].ended is not None


def test_a_retried_upload_near_midnight_is_still_a_duplicate(api):
    # The same body sent again 20 minutes later: the clock correction moves the session across midnight.
    body = {"sent_at": "2026-11-22T09:00:10Z", "sessions": [session("m", "2026-11-20T23:55:00Z", user="u-1")]}
    assert api.post("/v1/sessions", body).body["new_sessions"] == 1
    api.at("2026-11-22T09:20:10Z")
    assert api.post("/v1/sessions", body).body["duplicates"] == 1
    figures = api.active_users("2026-11-20", "2026-11-21")
    assert [f["sessions"] for f in figures] == [1, 0]


def test_a_copy_corrected_by_another_clock_error_is_still_a_duplicate(api):
    # The device clock went 14 hours wrong between two uploads of session x: corrected by it, the
    # copy would start in the evening of the 19th instead of at noon on the 20th.
    first = {
        "sent_at": "2026-11-22T12:00:00Z",
        "sessions": [session("x", "2026-11-20T12:00:00Z", user="u-1")],
    }
    assert api.post("/v1/sessions", first).body["new_sessions"] == 1
    api.at("2026-11-23T02:00:00Z")
    ended = session("x", "2026-11-20T12:00:00Z", user="u-1", ended_at="2026-11-21T02:30:00Z")
    again = {"sent_at": "2026-11-23T16:00:00Z", "sessions": [ended]}
    assert api.post("/v1/sessions", again).body == {
        "message": "success",
        "sessions_processed": 1,
        "new_sessions": 0,
        "duplicates": 1,
        "errors": [],
        "clock_offset_seconds": -14 * 3600,  # the device clock is 14 h ahead this time
    }
    figures = api.active_users("2026-11-19", "2026-11-20")
    assert [(f["dau"], f["sessions"], f["new_users"]) for f in figures] == [(0, 0, 0), (1, 1, 1)]
    stored = api.store.activity.find_sessions([(parse_date("2026-11-20"), "x")])
    assert stored[(parse_date("2026-11-20"), "x")].ended is not None


def test_late_uploads_revise_past_days(api):
    api.post("/v1/sessions", {"sessions": [session("a", "2026-11-21T10:00:00Z", user="u-1")]})
    before = api.active_users("2026-11-10", "2026-11-21")
    assert day(before, "2026-11-21")["new_users"] == 1
    # Ten days late: the offline session belongs to the 11th, which makes the 11th the first day.
    api.post("/v1/sessions", {"sessions": [session("old", "2026-11-11T08:00:00Z", user="u-1")]})
    after = api.active_users("2026-11-10", "2026-11-21")
    assert day(after, "2026-11-11")["dau"] == 1
    assert day(after, "2026-11-11")["new_users"] == 1
    assert day(after, "2026-11-21")["new_users"] == 0
    assert day(after, "2026-11-21")["mau"] == 1


def test_anonymous_and_identified_users_both_count(api):
    body = {
        "sessions": [
            session("a", "2026-11-20T10:00:00Z", device="d-1"),
            session("b", "2026-11-20T11:00:00Z", device="d-2", user="u-2"),
            session("c", "2026-11-20T12:00:00Z", device="d-2"),
        ]
    }
    api.post("/v1/sessions", body)
    figures = day(api.active_users("2026-11-20", "2026-11-20"), "2026-11-20")
    assert (figures["dau"], figures["sessions"], figures["new_users"]) == (3, 3, 3)


def test_sessions_outside_the_window_are_item_errors_and_good_ones_stay(api):
    body = {
        "sessions": [
            session("old", "2026-10-22T09:00:00Z"),
            session("good", "2026-11-21T09:00:00Z"),
            session("future", "2026-11-23T10:00:00Z"),
        ]
    }
    response = api.post("/v1/sessions", body)
    assert response.status == 201
    assert response.body["new_sessions"] == 1
    assert [(e["index"], e["field"]) for e in response.body["errors"]] == [
        (0, "sessions[0].started_at"),
        (2, "sessions[2].started_at"),
    ]


def test_metrics_cover_windows_and_stickiness(api):
    api.at("2026-11-22T09:00:10Z")
    sessions = [session(f"s{d}", f"2026-11-{d:02d}T12:00:00Z", user="u-daily") for d in range(1, 23)]
    sessions.append(session("w", "2026-11-16T12:00:00Z", user="u-weekly"))
    api.post("/v1/sessions", {"sessions": sessions})
    figures = day(api.active_users("2026-11-22", "2026-11-22"), "2026-11-22")
    assert (figures["dau"], figures["wau"], figures["mau"]) == (1, 2, 2)
    assert figures["stickiness"] == 0.5


def test_active_users_default_to_the_last_30_days(api):
    api.post("/v1/sessions", {"sessions": [session("a", "2026-11-21T10:00:00Z", user="u-1")]})
    days = api.get("/v1/metrics/active-users").body["days"]
    assert [d["date"] for d in (days[0], days[-1])] == ["2026-10-24", "2026-11-22"]
    assert len(days) == 30
    assert api.get("/v1/metrics/active-users", **{"from": "2026-11-21"}).body["days"][0]["dau"] == 1


def test_each_attribute_follows_the_newest_session_that_reports_it(api):
    api.post("/v1/sessions", {"sessions": [session("a", "2026-11-10T10:00:00Z", user="u-1", country="FR")]})
    batch = [
        session("b", "2026-11-20T10:00:00Z", user="u-1", country="DE", time_zone="Europe/Berlin"),
        session("c", "2026-11-21T10:00:00Z", user="u-1", app_version="3.0"),
    ]
    api.post("/v1/sessions", {"sessions": batch})
    # An old session uploaded late reports what was true then: it changes nothing.
    api.post("/v1/sessions", {"sessions": [session("d", "2026-11-15T10:00:00Z", user="u-1", country="IT")]})
    standard = api.store.users.load_user(UserKey("u-1", None)).to_profile().standard
    assert standard == {"country": "DE", "time_zone": "Europe/Berlin", "app_version": "3.0"}


def test_a_session_older_than_the_backends_update_does_not_override_it(api):
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "country": "FR", "language": "fr"}]})
    older = session("a", "2026-11-02T10:00:00Z", user="u-1", country="US", language="en", platform="ios")
    api.post("/v1/sessions", {"sessions": [older]})
    standard = api.store.users.load_user(UserKey("u-1", None)).to_profile().standard
    assert standard == {"country": "FR", "language": "fr"}
    api.at("2026-11-22T10:00:00Z")
    newer = session("b", "2026-11-22T09:50:00Z", user="u-1", country="US")
    api.post("/v1/sessions", {"sessions": [newer]})
    assert api.store.users.load_user(UserKey("u-1", None)).to_profile().standard["country"] == "US"


def test_sessions_never_rewrite_the_attributes_item(api):
    # A user with large custom attributes: what sessions report goes to its own small item.
    big = {f"attribute_{i}": "x" * 1000 for i in range(90)}
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", **big}]})
    user = UserKey("u-1", None)
    before = api.store.users.load_user(user)
    assert before.attributes is not None
    for index, started in enumerate(("2026-11-20T10:00:00Z", "2026-11-21T10:00:00Z")):
        body = {
            "sessions": [session(f"s{index}", started, user="u-1", app_version=f"5.{index}", country="FR")]
        }
        api.post("/v1/sessions", body)
    after = api.store.users.load_user(user)
    assert after.attributes == before.attributes  # same version: never written
    assert after.device_attributes is not None
    assert after.device_attributes.values == {"app_version": "5.1", "country": "FR"}
    assert stored_size(user, after.device_attributes) < 200
    profile = after.to_profile()
    assert profile.standard == {"app_version": "5.1", "country": "FR"}
    assert profile.custom == big


def test_a_session_that_reports_nothing_new_writes_nothing_but_its_session(api):
    user = UserKey("u-1", None)
    api.post("/v1/sessions", {"sessions": [session("a", "2026-11-20T10:00:00Z", user="u-1", platform="ios")]})
    written = api.store.users.load_user(user).device_attributes
    api.post("/v1/sessions", {"sessions": [session("b", "2026-11-21T10:00:00Z", user="u-1", platform="ios")]})
    assert api.store.users.load_user(user).device_attributes == written


def test_a_session_reporting_what_track_set_writes_nothing_more(api):
    user = UserKey("u-1", None)
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "country": "FR"}]})
    api.at("2026-11-22T10:00:00Z")
    api.post("/v1/sessions", {"sessions": [session("a", "2026-11-22T09:30:00Z", user="u-1", country="FR")]})
    assert api.store.users.load_user(user).device_attributes is None


def test_track_and_sessions_take_turns_newest_wins(api):
    user = UserKey("u-1", None)

    def country():
        return api.store.users.load_user(user).to_profile().standard.get("country")

    api.post("/v1/sessions", {"sessions": [session("a", "2026-11-20T10:00:00Z", user="u-1", country="FR")]})
    assert country() == "FR"
    api.at("2026-11-22T10:00:00Z")
    api.post(
        "/v1/users/track", {"attributes": [{"external_id": "u-1", "country": "DE", "first_name": "Ana"}]}
    )
    assert country() == "DE"  # track after the session: it wins
    api.at("2026-11-22T11:00:00Z")
    # The same country as the device record holds, reported by a session newer than the track.
    api.post("/v1/sessions", {"sessions": [session("b", "2026-11-22T10:30:00Z", user="u-1", country="FR")]})
    assert country() == "FR"
    api.at("2026-11-22T12:00:00Z")
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "country": None}]})
    assert country() is None  # unset by track after every session
    assert api.store.users.load_user(user).to_profile().standard["first_name"] == "Ana"
    api.at("2026-11-22T13:00:00Z")
    api.post("/v1/sessions", {"sessions": [session("c", "2026-11-22T12:30:00Z", user="u-1", country="IT")]})
    assert country() == "IT"


def test_values_sessions_stored_in_the_attributes_item_before_give_way_to_newer_reports(api):
    # Stored before session reports had an item of their own: in `standard`, with no per-name time.
    user = UserKey("u-1", None)
    api.post("/v1/sessions", {"sessions": [session("a", "2026-11-20T10:00:00Z", user="u-1")]})
    assert api.store.users.save(user, AttributesRecord(standard={"country": "FR", "platform": "ios"}))
    assert api.store.users.load_user(user).to_profile().standard == {"country": "FR", "platform": "ios"}
    api.post("/v1/sessions", {"sessions": [session("b", "2026-11-21T10:00:00Z", user="u-1", country="DE")]})
    assert api.store.users.load_user(user).to_profile().standard == {"country": "DE", "platform": "ios"}


def test_identify_keeps_the_newest_session_report_of_either_profile(api):
    older = session("a", "2026-11-20T10:00:00Z", user="u-7", app_version="1.0", country="FR")
    newer = session("b", "2026-11-21T10:00:00Z", device="d-42", app_version="2.0")
    api.post("/v1/sessions", {"sessions": [older, newer]})
    api.post("/v1/users/identify", {"aliases_to_identify": [{"device_id": "d-42", "external_id": "u-7"}]})
    standard = api.store.users.load_user(UserKey("u-7", None)).to_profile().standard
    assert standard == {"app_version": "2.0", "country": "FR"}


def test_created_at_is_the_earliest_thing_the_user_did(api):
    api.post("/v1/sessions", {"sessions": [session("a", "2026-11-01T10:00:00Z", user="u-1")]})
    assert api.store.users.load_user(UserKey("u-1", None)).to_profile().created_at == parse_instant(
        "2026-11-01T10:00:00Z"
    )
    event = {"external_id": "u-2", "name": "signup", "time": "2026-10-30T08:00:00Z"}
    api.post("/v1/users/track", {"events": [event]})
    assert api.store.users.load_user(UserKey("u-2", None)).to_profile().created_at == parse_instant(
        "2026-10-30T08:00:00Z"
    )
