"""users/track, identify, delete and push routes, checked through what segment rules will read."""

from __future__ import annotations

import pytest

from kudos.core.identity import UserKey
from kudos.core.profile import AttributeInstant
from kudos.core.timeutil import parse_date, parse_instant
from tests.apiclient import ApiClient


@pytest.fixture
def api(dynamodb):
    return ApiClient(dynamodb.settings, dynamodb.client, now="2026-11-22T09:00:00Z")


def profile(api, user_id=None, device_id=None):
    return api.store.users.load_user(UserKey(user_id, device_id)).to_profile()


def test_attributes_set_unset_increment_and_edit_lists(api):
    api.post(
        "/v1/users/track",
        {
            "attributes": [
                {
                    "external_id": "u-7",
                    "first_name": "Ana",
                    "country": "FR",
                    "push_subscribe": "opted_in",
                    "plan": "gold",
                    "tags": {"add": ["vip", "beta"], "remove": []},
                    "visits": {"inc": 1},
                    "is_employee": False,
                    "renewal": "2026-12-01T00:00:00Z",
                    "old_field": "x",
                }
            ]
        },
    )
    response = api.post(
        "/v1/users/track",
        {
            "attributes": [
                {
                    "external_id": "u-7",
                    "visits": {"inc": 2},
                    "tags": {"remove": ["beta"]},
                    "old_field": None,
                    "country": None,
                }
            ]
        },
    )
    assert response.body["attributes_processed"] == 1
    seen = profile(api, "u-7")
    assert seen.standard == {"first_name": "Ana"}
    assert seen.custom["plan"] == "gold"
    assert seen.custom["visits"] == 3
    assert seen.custom["tags"] == ["vip"]
    assert seen.custom["is_employee"] is False
    assert seen.custom["renewal"] == AttributeInstant(parse_instant("2026-12-01T00:00:00Z"))
    assert "old_field" not in seen.custom
    assert seen.push_subscription == "opted_in"
    assert seen.push_opted_in_at == api.now


def test_events_and_purchases_count_per_day_of_their_time(api):
    response = api.post(
        "/v1/users/track",
        {
            "events": [
                {"external_id": "u-1", "name": "added_to_cart", "time": "2026-11-20T10:00:00Z"},
                {"external_id": "u-1", "name": "added_to_cart", "time": "2026-11-21T10:00:00+02:00"},
                {
                    "external_id": "u-1",
                    "name": "shared",
                    "time": "2026-11-21T11:00:00Z",
                    "properties": {"to": "x"},
                },
            ],
            "purchases": [
                {
                    "external_id": "u-1",
                    "product_id": "gem",
                    "currency": "EUR",
                    "price": 4.5,
                    "quantity": 2,
                    "time": "2026-11-21T12:00:00Z",
                },
                {
                    "external_id": "u-1",
                    "product_id": "pass",
                    "currency": "EUR",
                    "price": 10,
                    "time": "2026-11-19T12:00:00Z",
                },
            ],
        },
    )
    assert (response.body["events_processed"], response.body["purchases_processed"]) == (3, 2)
    seen = profile(api, "u-1")
    cart = seen.events["added_to_cart"]
    assert cart.counts.total == 2
    assert cart.counts.by_day == {parse_date("2026-11-20"): 1, parse_date("2026-11-21"): 1}
    assert cart.first == parse_instant("2026-11-20T10:00:00Z")
    assert seen.purchases.total == 2
    assert seen.spent_total == pytest.approx(19.0)
    assert seen.spent_in_window(parse_date("2026-11-20"), parse_date("2026-11-22")) == pytest.approx(9.0)
    assert seen.last_purchase == parse_instant("2026-11-21T12:00:00Z")


def test_an_api_update_makes_the_user_active_on_the_processing_day(api):
    api.at("2026-11-22T09:00:00Z").post(
        "/v1/users/track", {"attributes": [{"external_id": "u-api", "plan": "x"}]}
    )
    # An event from two days ago still makes the user active today, the day it was processed.
    api.at("2026-11-22T10:00:00Z").post(
        "/v1/users/track", {"events": [{"device_id": "d-anon", "name": "x", "time": "2026-11-20T10:00:00Z"}]}
    )
    figures = api.active_users("2026-11-20", "2026-11-22")
    assert [f["dau"] for f in figures] == [0, 0, 2]
    assert figures[-1]["new_users"] == 2
    assert figures[-1]["sessions"] == 0


def test_identify_merges_the_anonymous_profile_into_the_identified_one(api):
    api.post(
        "/v1/sessions",
        {
            "sessions": [
                {"session_id": "a1", "device_id": "d-42", "started_at": "2026-11-10T10:00:00Z"},
                {
                    "session_id": "a2",
                    "device_id": "d-42",
                    "started_at": "2026-11-21T10:00:00Z",
                    "country": "FR",
                },
                {
                    "session_id": "k1",
                    "device_id": "d-9",
                    "user_id": "u-7",
                    "started_at": "2026-11-15T10:00:00Z",
                },
            ]
        },
    )
    api.post(
        "/v1/users/track",
        {
            "attributes": [
                {"external_id": "u-7", "first_name": "Ana"},
                {"device_id": "d-42", "first_name": "Anon", "plan": "free"},
            ]
        },
    )
    before = api.active_users("2026-11-21", "2026-11-21")
    response = api.post(
        "/v1/users/identify", {"aliases_to_identify": [{"device_id": "d-42", "external_id": "u-7"}]}
    )
    assert response.status == 201
    assert response.body["aliases_processed"] == 1
    merged = profile(api, "u-7")
    assert merged.sessions.total == 3
    assert merged.first_session == parse_instant("2026-11-10T10:00:00Z")
    assert merged.last_session == parse_instant("2026-11-21T10:00:00Z")
    assert merged.standard["first_name"] == "Ana"  # already set on the identified profile: it wins
    assert merged.custom["plan"] == "free"
    assert not api.store.users.load_user(UserKey(None, "d-42")).exists
    # Figures recorded for past days stay; a later device-only session goes to the identified user.
    assert api.active_users("2026-11-21", "2026-11-21") == before
    api.post(
        "/v1/sessions",
        {"sessions": [{"session_id": "a3", "device_id": "d-42", "started_at": "2026-11-22T08:00:00Z"}]},
    )
    assert profile(api, "u-7").sessions.total == 4
    assert not api.store.users.load_user(UserKey(None, "d-42")).exists


def test_identify_of_an_unknown_user_renames_the_anonymous_profile(api):
    api.post(
        "/v1/sessions",
        {"sessions": [{"session_id": "a1", "device_id": "d-1", "started_at": "2026-11-21T10:00:00Z"}]},
    )
    api.post("/v1/users/identify", {"aliases_to_identify": [{"device_id": "d-1", "external_id": "u-new"}]})
    assert profile(api, "u-new").sessions.total == 1
    # Same person, same activity id: still one user in the figures.
    api.post(
        "/v1/sessions",
        {
            "sessions": [
                {
                    "session_id": "a2",
                    "device_id": "d-1",
                    "user_id": "u-new",
                    "started_at": "2026-11-21T12:00:00Z",
                }
            ]
        },
    )
    assert api.active_users("2026-11-21", "2026-11-21")[0]["dau"] == 1


def test_identify_reports_bad_aliases_by_index(api):
    response = api.post(
        "/v1/users/identify",
        {"aliases_to_identify": [{"device_id": "d-1"}, {"device_id": "d-2", "external_id": "u-2"}]},
    )
    assert response.status == 201
    assert response.body["aliases_processed"] == 1
    assert response.body["errors"][0]["field"] == "aliases_to_identify[0].external_id"
    assert api.post("/v1/users/identify", {"aliases_to_identify": [{}] * 51}).status == 400


def test_delete_removes_the_profile_but_not_past_figures(api):
    api.post(
        "/v1/sessions",
        {
            "sessions": [
                {
                    "session_id": "a1",
                    "device_id": "d-1",
                    "user_id": "u-gone",
                    "started_at": "2026-11-21T10:00:00Z",
                }
            ]
        },
    )
    api.post(
        "/v1/push/tokens",
        {"device_id": "d-1", "user_id": "u-gone", "platform": "ios", "token": "tok", "enabled": True},
    )
    before = api.active_users("2026-11-21", "2026-11-21")
    response = api.post("/v1/users/delete", {"external_ids": ["u-gone", "u-never-existed"]})
    assert response.body == {"message": "success", "deleted": 1, "errors": []}
    assert not api.store.users.load_user(UserKey("u-gone", None)).records()
    assert api.active_users("2026-11-21", "2026-11-21") == before
    assert api.post("/v1/users/delete", {"external_ids": ["a"] * 30, "device_ids": ["b"] * 21}).status == 400


def test_a_bad_id_to_delete_is_reported_and_the_good_ones_deleted(api):
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "plan": "gold"}]})
    api.post("/v1/users/track", {"attributes": [{"device_id": "d-1", "plan": "free"}]})
    response = api.post("/v1/users/delete", {"external_ids": ["", "u-1", 5], "device_ids": ["d-1", None]})
    assert response.status == 201
    assert response.body["deleted"] == 2
    assert [(e["input_array"], e["index"], e["field"]) for e in response.body["errors"]] == [
        ("external_ids", 0, "external_ids[0]"),
        ("external_ids", 2, "external_ids[2]"),
        ("device_ids", 1, "device_ids[1]"),
    ]
    assert "must not be empty" in response.body["errors"][0]["message"]
    assert not api.store.users.load_user(UserKey("u-1", None)).exists
    assert not api.store.users.load_user(UserKey(None, "d-1")).exists


def test_deleting_a_user_forgets_the_devices_merged_into_it(api):
    anonymous = {"session_id": "s1", "device_id": "d-1", "started_at": "2026-11-21T10:00:00Z"}
    api.post("/v1/sessions", {"sessions": [anonymous]})
    api.post("/v1/users/identify", {"aliases_to_identify": [{"device_id": "d-1", "external_id": "u-1"}]})
    # d-2 was merged into u-1 and later identified as u-2: its alias is u-2's now.
    api.post("/v1/users/identify", {"aliases_to_identify": [{"device_id": "d-2", "external_id": "u-1"}]})
    api.post("/v1/users/identify", {"aliases_to_identify": [{"device_id": "d-2", "external_id": "u-2"}]})
    assert api.post("/v1/users/delete", {"external_ids": ["u-1"]}).body["deleted"] == 1
    # The device's next anonymous session makes a new anonymous user, not u-1 again.
    later = {**anonymous, "session_id": "s2", "started_at": "2026-11-22T08:00:00Z"}
    api.post("/v1/sessions", {"sessions": [later]})
    assert not api.store.users.load_user(UserKey("u-1", None)).exists
    assert api.store.users.load_user(UserKey(None, "d-1")).to_profile().sessions.total == 1
    assert not api.store.pointers.resolve_anonymous([UserKey.of_device("d-1")])
    assert api.store.pointers.resolve_anonymous([UserKey.of_device("d-2")]) == {
        UserKey.of_device("d-2"): UserKey("u-2", None)
    }


def test_push_tokens_and_events_feed_push_state_and_campaign_history(api):
    token = {"device_id": "d-1", "user_id": "u-1", "platform": "android", "token": "fcm-1", "enabled": True}
    assert api.post("/v1/push/tokens", token).status == 201
    assert profile(api, "u-1").push_enabled is True
    events = [
        {
            "type": "delivered",
            "user_id": "u-1",
            "campaign_id": "thanks",
            "send_id": "s1",
            "time": "2026-11-21T10:00:00Z",
        },
        {"type": "opened", "user_id": "u-1", "campaign_id": "thanks", "time": "2026-11-21T10:05:00Z"},
        # After the registration (09:00, which subscribed the user): the latest choice wins.
        {"type": "opted_out", "device_id": "d-1", "user_id": "u-1", "time": "2026-11-22T09:10:00Z"},
        {"type": "token_invalid", "device_id": "d-1", "user_id": "u-1", "time": "2026-11-22T09:30:00Z"},
        {"type": "exploded", "user_id": "u-1", "time": "2026-11-21T11:00:00Z"},
        {"type": "opened", "time": "2026-11-21T11:00:00Z", "campaign_id": "x"},
    ]
    response = api.post("/v1/push/events", {"events": events})
    assert response.status == 201
    assert response.body["events_processed"] == 4
    assert [e["field"] for e in response.body["errors"]] == ["events[4].type", "events[5].device_id"]
    seen = profile(api, "u-1")
    assert seen.push_enabled is False
    assert seen.push_subscription == "unsubscribed"
    assert seen.push_unsubscribed_at == parse_instant("2026-11-22T09:10:00Z")
    thanks = seen.campaigns["thanks"]
    assert (thanks.received, thanks.opened, thanks.last_received) == (
        True,
        True,
        parse_instant("2026-11-21T10:00:00Z"),
    )
    assert seen.last_received_any == thanks.last_received


def test_push_token_errors_name_the_field(api):
    response = api.post(
        "/v1/push/tokens", {"device_id": "d-1", "platform": "symbian", "token": "t", "enabled": "yes"}
    )
    assert response.status == 400
    assert {e["field"] for e in response.body["errors"]} == {"platform", "enabled"}


def test_the_latest_subscription_choice_wins_whatever_the_upload_order(api):
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "push_subscribe": "opted_in"}]})
    opted_out = {"type": "opted_out", "user_id": "u-1", "time": "2026-11-22T09:30:00Z"}
    older_opt_in = {"type": "opted_in", "user_id": "u-1", "time": "2026-11-20T10:00:00Z"}
    api.post("/v1/push/events", {"events": [opted_out]})
    api.post("/v1/push/events", {"events": [older_opt_in]})  # uploaded late: changes nothing
    seen = profile(api, "u-1")
    assert seen.push_subscription == "unsubscribed"
    assert seen.push_unsubscribed_at == parse_instant("2026-11-22T09:30:00Z")
    assert seen.push_opted_in_at == api.now  # the track call
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "push_subscribe": None}]})
    assert profile(api, "u-1").push_subscription is None


def test_a_token_registered_after_it_was_found_invalid_stays_valid(api):
    token = {"device_id": "d-1", "user_id": "u-1", "platform": "ios", "token": "apns-2", "enabled": True}
    api.post("/v1/push/tokens", token)
    invalid = {"type": "token_invalid", "device_id": "d-1", "user_id": "u-1", "time": "2026-11-21T10:00:00Z"}
    api.post("/v1/push/events", {"events": [invalid]})
    assert profile(api, "u-1").push_enabled is True


def test_an_opened_push_was_received(api):
    opened = {"type": "opened", "user_id": "u-1", "campaign_id": "thanks", "time": "2026-11-21T10:00:00Z"}
    api.post("/v1/push/events", {"events": [opened]})
    history = profile(api, "u-1").campaigns["thanks"]
    assert (history.received, history.opened) == (True, True)
    assert history.last_received == parse_instant("2026-11-21T10:00:00Z")


def test_instants_in_any_rfc3339_spelling_become_time_attributes(api):
    attributes = {"external_id": "u-1", "a": "2026-11-21t10:00:00z", "b": "2026-11-21 10:00:00+01:00"}
    api.post("/v1/users/track", {"attributes": [attributes]})
    custom = profile(api, "u-1").custom
    assert custom["a"] == AttributeInstant(parse_instant("2026-11-21T10:00:00Z"))
    assert custom["b"] == AttributeInstant(parse_instant("2026-11-21T09:00:00Z"))


def test_push_events_known_only_by_device_reach_the_user_who_registered_it(api):
    api.post(
        "/v1/sessions",
        {
            "sessions": [
                {
                    "session_id": "s",
                    "device_id": "d-1",
                    "user_id": "u-1",
                    "started_at": "2026-11-21T10:00:00Z",
                }
            ]
        },
    )
    token = {"device_id": "d-1", "user_id": "u-1", "platform": "android", "token": "fcm-1", "enabled": True}
    api.post("/v1/push/tokens", token)
    events = [
        {"type": "delivered", "device_id": "d-1", "campaign_id": "thanks", "time": "2026-11-22T09:10:00Z"},
        {"type": "opted_out", "device_id": "d-1", "time": "2026-11-22T09:20:00Z"},
        {"type": "token_invalid", "device_id": "d-1", "time": "2026-11-22T09:30:00Z"},
    ]
    assert api.post("/v1/push/events", {"events": events}).body["events_processed"] == 3
    seen = profile(api, "u-1")
    assert (seen.push_enabled, seen.push_subscription) == (False, "unsubscribed")
    assert seen.campaigns["thanks"].received is True


def test_a_device_holds_one_token_for_the_user_who_registered_it_last(api):
    token = {"device_id": "d-1", "platform": "ios", "token": "apns-1", "enabled": True}
    api.post("/v1/push/tokens", {**token, "user_id": "u-1"})
    api.post("/v1/push/tokens", {**token, "user_id": "u-2"})
    assert "d-1" not in api.store.users.load_user(UserKey("u-1", None)).tokens
    assert "d-1" in api.store.users.load_user(UserKey("u-2", None)).tokens
    api.post("/v1/users/delete", {"external_ids": ["u-2"]})
    assert api.store.pointers.device_owner("d-1") is None
