"""Braze payloads on the backend routes and push state, through the real handlers on moto and
DynamoDB Local: user aliases in track, identify, delete and segment membership; the
`_update_existing_only` flag; ISO 8601 variants; unsupported identifiers (the fast versions of the
edges are in tests/unit/test_braze_payloads_on_fake.py)."""

from __future__ import annotations

import pytest

from kudos.core.identity import UserKey
from kudos.core.timeutil import parse_instant
from tests.apiclient import ApiClient

NOW = "2026-11-22T12:00:00Z"
ALIAS = {"alias_name": "c-1", "alias_label": "crm"}
ALIAS_KEY = UserKey.of_alias("crm", "c-1")


@pytest.fixture
def api(dynamodb):
    return ApiClient(dynamodb.settings, dynamodb.client, now=NOW)


def purchase(who: dict, price: float, time: str = "2026-11-21T10:00:00+0100") -> dict:
    return {**who, "product_id": "p", "currency": "EUR", "price": price, "time": time}


def members(api, segment: str) -> list[dict]:
    response = api.get(f"/v1/segments/{segment}/members")
    assert response.status == 200
    return response.body["members"]


def test_an_alias_user_is_stored_segmented_identified_and_deleted(api):
    # big_spenders: spent(last 90 days) >= 500.
    response = api.post(
        "/v1/users/track",
        {
            "attributes": [{"user_alias": ALIAS, "plan": "gold"}],
            "purchases": [purchase({"user_alias": ALIAS}, 600)],
        },
    )
    assert response.status == 201
    assert response.body["errors"] == []
    assert members(api, "big_spenders") == [{"user_alias": ALIAS}]

    response = api.post(
        "/v1/users/identify", {"aliases_to_identify": [{"external_id": "u-7", "user_alias": ALIAS}]}
    )
    assert response.status == 201
    assert response.body["aliases_processed"] == 1
    assert members(api, "big_spenders") == [{"user_id": "u-7"}]
    assert not api.store.users.load_user(ALIAS_KEY).records()
    # Later data naming the alias goes to the user.
    api.post("/v1/users/track", {"attributes": [{"user_alias": ALIAS, "visits": {"inc": 1}}]})
    user = api.store.users.load_user(UserKey.of_user("u-7")).to_profile()
    assert user.custom == {"plan": "gold", "visits": 1}
    assert user.spent_total == 600

    response = api.post("/v1/users/delete", {"user_aliases": [ALIAS], "braze_ids": ["b-1"]})
    assert response.status == 201
    assert response.body["deleted"] == 1  # the alias's pointer: all that was left of it
    assert [e["message"] for e in response.body["errors"]] == [
        "braze_ids[0]: not supported: kudos has no Braze ids; use external_ids, user_aliases or device_ids"
    ]
    assert api.store.pointers.resolve_anonymous([ALIAS_KEY]) == {}
    assert api.store.users.load_user(UserKey.of_user("u-7")).exists


def test_an_alias_only_profile_is_deleted_with_its_memberships(api):
    api.post("/v1/users/track", {"purchases": [purchase({"user_alias": ALIAS}, 600)]})
    response = api.post("/v1/users/delete", {"user_aliases": [ALIAS, {"alias_name": "x"}]})
    assert response.body["deleted"] == 1
    assert [e["message"] for e in response.body["errors"]] == ["user_aliases[1].alias_label: is required"]
    assert members(api, "big_spenders") == []


def test_update_existing_only_and_bad_items_between_good_ones(api):
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "plan": "free"}]})
    response = api.post(
        "/v1/users/track",
        {
            "attributes": [
                {"external_id": "u-1", "plan": "gold", "_update_existing_only": True},
                {"external_id": "u-2", "plan": "gold", "_update_existing_only": True},
                {"braze_id": "b-1", "plan": "gold"},
                {"email": "a@example.com", "plan": "gold"},
                {"external_id": "u-3", "push_tokens": [{"app_id": "a", "token": "t"}]},
                {"external_id": "u-3", "_private": "x"},
                {"external_id": "u-3", "plan": "silver", "_merge_objects": True},
            ],
            "events": [
                {"user_alias": ALIAS, "name": "e", "time": "2026-11-22T10:00:00.123+0100"},
                {"external_id": "u-4", "name": "e", "time": "2026-11-22T10:00:00"},
            ],
        },
    )
    assert response.status == 201
    assert response.body["attributes_processed"] == 2
    assert response.body["events_processed"] == 1
    assert [(e["index"], e["message"]) for e in response.body["errors"]] == [
        (
            1,
            'attributes[1].external_id: no user with user_id "u-2" exists, and _update_existing_only is true',
        ),
        (
            2,
            "attributes[2].braze_id: not supported: kudos has no Braze ids; name the user with external_id, "
            "user_alias or device_id",
        ),
        (
            3,
            "attributes[3].email: identifying a user by email is not supported; name the user with external_id, "
            "user_alias or device_id",
        ),
        (
            4,
            "attributes[4].push_tokens: not supported here: register each device's push token with "
            "POST /v1/push/tokens",
        ),
        (
            5,
            "attributes[5]._private: keys starting with _ are request options (_merge_objects, "
            "_update_existing_only), not attributes: not stored",
        ),
        (1, "events[1].time: no time zone"),
    ]
    assert api.store.users.load_user(UserKey.of_user("u-1")).to_profile().custom == {"plan": "gold"}
    assert not api.store.users.load_user(UserKey.of_user("u-2")).records()
    assert api.store.users.load_user(UserKey.of_user("u-3")).to_profile().custom == {"plan": "silver"}
    event = api.store.users.load_user(ALIAS_KEY).to_profile().events["e"]
    assert event.last == parse_instant("2026-11-22T09:00:00.123Z")


def test_the_sdk_routes_keep_rfc3339(api):
    response = api.post(
        "/v1/push/events",
        {"events": [{"type": "opted_in", "user_id": "u-1", "time": "2026-11-22T10:00:00+0100"}]},
    )
    assert [e["message"] for e in response.body["errors"]] == [
        "events[0].time: not an RFC 3339 instant (expected e.g. 2026-11-20T18:03:00Z)"
    ]


def test_push_enabled_follows_the_latest_push_choice(api):
    # cart_abandoners: an added_to_cart event this week, no purchase, and push_enabled.
    token = {"device_id": "d-1", "user_id": "u-1", "platform": "web", "token": "t", "enabled": True}
    response = api.post("/v1/push/tokens", token)
    assert response.status == 201
    assert response.body["push_enabled"] is True
    api.post("/v1/users/track", {"events": [{"external_id": "u-1", "name": "added_to_cart", "time": NOW}]})
    user = api.store.users.load_user(UserKey.of_user("u-1")).to_profile()
    assert (user.push_subscription, user.push_enabled) == ("subscribed", True)
    assert members(api, "cart_abandoners") == [{"user_id": "u-1"}]

    # An opt-out dated before the registration, uploaded after it: the registration is later and wins.
    late = {"events": [{"type": "opted_out", "user_id": "u-1", "time": "2026-11-22T11:00:00Z"}]}
    assert api.post("/v1/push/events", late).status == 201
    assert members(api, "cart_abandoners") == [{"user_id": "u-1"}]
    # A newer opt-out wins: a token alone no longer makes the user reachable.
    newer = {"events": [{"type": "opted_out", "user_id": "u-1", "time": "2026-11-22T12:00:01Z"}]}
    api.post("/v1/push/events", newer)
    assert members(api, "cart_abandoners") == []
    # Registering again does not change a subscription the user set.
    assert api.post("/v1/push/tokens", token).body["push_enabled"] is False
    user = api.store.users.load_user(UserKey.of_user("u-1")).to_profile()
    assert (user.push_subscription, user.push_enabled) == ("unsubscribed", False)
