"""Braze payloads and push state on the in-memory fake (fast; the same through the handlers on moto
and DynamoDB Local in tests/functional/test_braze_api.py): user aliases in every route, the
`_update_existing_only` flag, ISO 8601 variants, unsupported identifiers, and push state."""

from __future__ import annotations

from typing import Any

import pytest

from dsl import load_segments
from kudos.core.identity import UserAlias, UserKey
from kudos.core.profile import AttributeInstant
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import InstantError, format_instant, parse_instant, parse_iso8601_instant
from kudos.ingest.push import record_push_events, register_token
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from kudos.ingest.users import delete_users, identify_users
from kudos.store.memory import MemoryStore

NOW = parse_instant("2026-11-22T12:00:00Z")
SETTINGS = Settings()
SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)
ALIAS = {"alias_name": "c-1", "alias_label": "crm"}
ALIAS_KEY = UserKey.of_alias("crm", "c-1")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def track(store: MemoryStore, body: dict[str, Any]) -> dict[str, Any]:
    return track_users(store, SEGMENTS, SETTINGS, NOW, body).to_json()


def messages(result: dict[str, Any]) -> list[str]:
    return [error["message"] for error in result["errors"]]


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        UserKey.of_user("u:7"),
        UserKey.of_device("d:%3A"),
        UserKey.of_alias("crm", "c-1"),
        UserKey.of_alias("a:b%3A%", ":name:with:colons%"),
        UserKey.of_alias("", ""),
    ],
)
def test_a_user_key_token_parses_back_to_the_key(key: UserKey) -> None:
    assert UserKey.parse(key.token) == key


def test_an_alias_key_reads_as_its_label_and_name_and_is_written_as_braze_writes_it() -> None:
    assert ALIAS_KEY.token == "a:crm:c-1"
    assert ALIAS_KEY.anonymous
    assert ALIAS_KEY.identity() == {"user_alias": {"alias_name": "c-1", "alias_label": "crm"}}
    assert ALIAS_KEY.describe() == 'user_alias {"alias_name": "c-1", "alias_label": "crm"}'
    assert UserKey.of_user("u-7").describe() == 'user_id "u-7"'
    with pytest.raises(ValueError, match="exactly one"):
        UserKey("u", None, UserAlias("l", "n"))


# --- user_alias -------------------------------------------------------------------------------


def test_an_alias_names_an_anonymous_profile_in_attributes_events_and_purchases(store: MemoryStore) -> None:
    result = track(
        store,
        {
            "attributes": [{"user_alias": ALIAS, "plan": "gold"}],
            "events": [{"user_alias": ALIAS, "name": "claimed", "time": format_instant(NOW - 60)}],
            "purchases": [
                {
                    "user_alias": ALIAS,
                    "product_id": "p",
                    "currency": "EUR",
                    "price": 2,
                    "time": "2026-11-22T10:00Z",
                }
            ],
        },
    )
    assert result["errors"] == []
    profile = store.users.load_user(ALIAS_KEY).to_profile()
    assert profile.anonymous
    assert profile.custom["plan"] == "gold"
    assert profile.events["claimed"].counts.total == 1
    assert profile.purchases.total == 1
    assert profile.identity() == {"user_alias": ALIAS}
    # "user_alias" is how the item names its user, never an attribute.
    assert "user_alias" not in profile.custom


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("crm:c-1", "attributes[0].user_alias: expected an object, not a string"),
        ({"alias_name": "c-1"}, "attributes[0].user_alias.alias_label: is required"),
        ({"alias_name": "", "alias_label": "crm"}, "attributes[0].user_alias.alias_name: must not be empty"),
        (
            {"alias_name": "é" * 256, "alias_label": "é" * 256},
            "attributes[0].user_alias: alias_label and alias_name together are longer than 1000 bytes in UTF-8",
        ),
    ],
)
def test_a_bad_alias_is_an_item_error_and_the_others_are_kept(
    store: MemoryStore, alias: Any, message: str
) -> None:
    result = track(
        store, {"attributes": [{"user_alias": alias, "plan": "x"}, {"external_id": "u-1", "plan": "y"}]}
    )
    assert messages(result) == [message]
    assert result["attributes_processed"] == 1
    assert store.users.load_user(UserKey.of_user("u-1")).exists


def test_identify_merges_an_alias_profile_and_later_alias_data_goes_to_the_user(store: MemoryStore) -> None:
    track(store, {"attributes": [{"user_alias": ALIAS, "plan": "gold", "visits": {"inc": 2}}]})
    track(store, {"attributes": [{"external_id": "u-7", "plan": "free"}]})
    result = identify_users(
        store, SEGMENTS, NOW, {"aliases_to_identify": [{"external_id": "u-7", "user_alias": ALIAS}]}
    )
    assert result.to_json()["aliases_processed"] == 1
    assert not store.users.load_user(ALIAS_KEY).records()
    assert store.pointers.resolve_anonymous([ALIAS_KEY]) == {ALIAS_KEY: UserKey.of_user("u-7")}
    track(store, {"attributes": [{"user_alias": ALIAS, "visits": {"inc": 1}}]})
    profile = store.users.load_user(UserKey.of_user("u-7")).to_profile()
    assert profile.custom["plan"] == "free"  # already set on the identified profile: it wins
    assert profile.custom["visits"] == 3
    assert not store.users.load_user(ALIAS_KEY).records()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"external_id": "u-7"},
            "aliases_to_identify[0]: expected either device_id or user_alias beside external_id",
        ),
        (
            {"external_id": "u-7", "device_id": "d-1", "user_alias": ALIAS},
            "aliases_to_identify[0]: expected either device_id or user_alias beside external_id",
        ),
        ({"user_alias": ALIAS}, "aliases_to_identify[0].external_id: is required"),
        (
            {"external_id": "u-7", "braze_id": "b"},
            "aliases_to_identify[0].braze_id: not supported: kudos has no Braze ids; name the anonymous profile with external_id, user_alias or device_id",
        ),
    ],
)
def test_identify_item_errors(store: MemoryStore, item: dict[str, Any], message: str) -> None:
    body = {"aliases_to_identify": [item, {"external_id": "u-8", "device_id": "d-8"}]}
    result = identify_users(store, SEGMENTS, NOW, body).to_json()
    assert messages(result) == [message]
    assert result["aliases_processed"] == 1


def test_delete_by_alias_takes_an_alias_profile_or_the_pointer_of_a_merged_one(store: MemoryStore) -> None:
    other = {"alias_name": "c-2", "alias_label": "crm"}
    track(store, {"attributes": [{"user_alias": ALIAS, "plan": "a"}, {"user_alias": other, "plan": "b"}]})
    identify_users(
        store, SEGMENTS, NOW, {"aliases_to_identify": [{"external_id": "u-7", "user_alias": other}]}
    )
    result = delete_users(
        store, NOW, {"user_aliases": [ALIAS, other, {"alias_name": "c-3"}], "braze_ids": ["b-1"]}
    )
    assert result["deleted"] == 2
    assert messages(result) == [
        "user_aliases[2].alias_label: is required",
        "braze_ids[0]: not supported: kudos has no Braze ids; use external_ids, user_aliases or device_ids",
    ]
    assert not store.users.load_user(ALIAS_KEY).records()
    assert store.pointers.resolve_anonymous([UserKey.of_alias("crm", "c-2")]) == {}
    assert store.users.load_user(UserKey.of_user("u-7")).exists  # the user stays


def test_deleting_a_user_deletes_the_pointers_of_the_aliases_merged_into_it(store: MemoryStore) -> None:
    track(store, {"attributes": [{"user_alias": ALIAS, "plan": "a"}]})
    identify_users(
        store, SEGMENTS, NOW, {"aliases_to_identify": [{"external_id": "u-7", "user_alias": ALIAS}]}
    )
    assert delete_users(store, NOW, {"external_ids": ["u-7"]})["deleted"] == 1
    assert store.pointers.resolve_anonymous([ALIAS_KEY]) == {}


def test_an_alias_user_enters_and_leaves_segments(store: MemoryStore) -> None:
    # segments/ has a rule on sessions; an alias user with none is in no segment, and must not break
    # the re-evaluation on any route.
    track(store, {"attributes": [{"user_alias": ALIAS, "plan": "gold"}]})
    records = store.users.load_user(ALIAS_KEY)
    assert records.exists
    identify_users(
        store, SEGMENTS, NOW, {"aliases_to_identify": [{"external_id": "u-7", "user_alias": ALIAS}]}
    )
    assert not store.users.load_user(ALIAS_KEY).memberships


# --- _update_existing_only, `_` keys, unsupported identifiers ---------------------------------


def test_update_existing_only_updates_an_existing_profile_and_refuses_a_new_one(store: MemoryStore) -> None:
    track(store, {"attributes": [{"external_id": "u-1", "plan": "free"}]})
    result = track(
        store,
        {
            "attributes": [
                {"external_id": "u-1", "plan": "gold", "_update_existing_only": True},
                {"external_id": "u-2", "plan": "gold", "_update_existing_only": True},
                {"user_alias": ALIAS, "plan": "gold", "_update_existing_only": True},
                {"external_id": "u-3", "plan": "gold", "_update_existing_only": False},
            ],
            "events": [
                {
                    "external_id": "u-4",
                    "name": "e",
                    "time": format_instant(NOW),
                    "_update_existing_only": True,
                }
            ],
        },
    )
    assert messages(result) == [
        'attributes[1].external_id: no user with user_id "u-2" exists, and _update_existing_only is true',
        'attributes[2].user_alias: no user with user_alias {"alias_name": "c-1", "alias_label": "crm"} exists, '
        "and _update_existing_only is true",
        'events[0].external_id: no user with user_id "u-4" exists, and _update_existing_only is true',
    ]
    assert result["attributes_processed"] == 2
    assert result["events_processed"] == 0
    assert store.users.load_user(UserKey.of_user("u-1")).to_profile().custom == {"plan": "gold"}
    assert not store.users.load_user(UserKey.of_user("u-2")).records()
    assert not store.users.load_user(ALIAS_KEY).records()
    assert not store.users.load_user(UserKey.of_user("u-4")).records()
    assert store.users.load_user(UserKey.of_user("u-3")).exists


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"_update_existing_only": "yes"},
            "attributes[0]._update_existing_only: expected true or false, not a string",
        ),
        (
            {"_secret": 1},
            "attributes[0]._secret: keys starting with _ are request options (_merge_objects, _update_existing_only), not attributes: not stored",
        ),
        ({"_merge_objects": 1}, "attributes[0]._merge_objects: expected true or false, not a number"),
        (
            {"push_tokens": [{"app_id": "a", "token": "t"}]},
            "attributes[0].push_tokens: not supported here: register each device's push token with POST /v1/push/tokens",
        ),
        (
            {"braze_id": "b-1"},
            "attributes[0].braze_id: not supported: kudos has no Braze ids; name the user with external_id, user_alias or device_id",
        ),
    ],
)
def test_options_and_unsupported_keys_in_attributes(
    store: MemoryStore, item: dict[str, Any], message: str
) -> None:
    result = track(
        store, {"attributes": [{"external_id": "u-1", **item}, {"external_id": "u-2", "plan": "y"}]}
    )
    assert messages(result) == [message]
    assert not store.users.load_user(UserKey.of_user("u-1")).records()
    assert store.users.load_user(UserKey.of_user("u-2")).exists


def test_merge_objects_is_accepted_and_never_stored(store: MemoryStore) -> None:
    result = track(store, {"attributes": [{"external_id": "u-1", "_merge_objects": True, "plan": "x"}]})
    assert result["errors"] == []
    assert store.users.load_user(UserKey.of_user("u-1")).to_profile().custom == {"plan": "x"}


def test_email_names_no_user_but_is_an_attribute_beside_an_identifier(store: MemoryStore) -> None:
    result = track(
        store,
        {
            "attributes": [
                {"email": "a@example.com", "plan": "x"},
                {"external_id": "u-1", "email": "a@example.com"},
            ],
            "events": [
                {"braze_id": "b", "name": "e", "time": format_instant(NOW)},
                {"name": "e", "time": format_instant(NOW)},
            ],
        },
    )
    assert messages(result) == [
        "attributes[0].email: identifying a user by email is not supported; "
        "name the user with external_id, user_alias or device_id",
        "events[0].braze_id: not supported: kudos has no Braze ids; name the user with external_id, user_alias or device_id",
        "events[1]: names no user: name the user with external_id, user_alias or device_id",
    ]
    assert store.users.load_user(UserKey.of_user("u-1")).to_profile().standard["email"] == "a@example.com"


# --- instants ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T11:00:00Z",
        "2026-11-22T12:00:00+01:00",
        "2026-11-22T12:00:00+0100",
        "2026-11-22T12:00:00+1:00",
        "2026-11-22T12:00:00+01",
        "2026-11-22T12:00+01:00",
        "2026-11-22T11:00:00.000Z",
        "2026-11-22T11:00:00,000Z",
        "2026-11-22T11:00:00:000Z",
        "2026-11-22 06:00:00-05:00",
        "2026-11-22T11:00:00.000000000Z",
    ],
)
def test_iso8601_variants_on_the_backend_routes(store: MemoryStore, text: str) -> None:
    assert parse_iso8601_instant(text) == parse_instant("2026-11-22T11:00:00Z")
    result = track(store, {"events": [{"external_id": "u-1", "name": "e", "time": text}]})
    assert result["errors"] == []
    assert store.users.load_user(UserKey.of_user("u-1")).to_profile().events["e"].last == NOW - 3600


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-11-22T11:00:00", "no time zone"),
        ("2026-11-22T11:00", "no time zone"),
        ("2026-11-22 11:00:00.5", "no time zone"),
        ("22/11/2026 11:00Z", "not an RFC 3339 instant (expected e.g. 2026-11-20T18:03:00Z)"),
        ("2026-11-22", "not an instant but a date (expected e.g. 2026-11-20T18:03:00Z)"),
        ("2026-11-22T11:00:00+25:00", "not an ISO 8601 instant (expected e.g. 2026-11-20T18:03:00Z)"),
    ],
)
def test_an_instant_without_a_zone_is_still_refused(store: MemoryStore, text: str, problem: str) -> None:
    with pytest.raises(InstantError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_iso8601_instant(text)
    result = track(store, {"events": [{"external_id": "u-1", "name": "e", "time": text}]})
    assert messages(result) == [f"events[0].time: {problem}"]


def test_a_time_attribute_takes_the_variants_too(store: MemoryStore) -> None:
    track(store, {"attributes": [{"external_id": "u-1", "renewal": "2026-12-01T10:00:00+0100"}]})
    custom = store.users.load_user(UserKey.of_user("u-1")).to_profile().custom
    assert custom["renewal"] == AttributeInstant(parse_instant("2026-12-01T09:00:00Z"))


def test_the_sdk_routes_stay_strict_rfc3339(store: MemoryStore) -> None:
    body = {"sessions": [{"session_id": "s", "device_id": "d", "started_at": "2026-11-22T12:00:00+0100"}]}
    result = ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body).to_json()
    assert messages(result) == [
        "sessions[0].started_at: not an RFC 3339 instant (expected e.g. 2026-11-20T18:03:00Z)"
    ]


# --- push state -------------------------------------------------------------------------------


def register(store: MemoryStore, now: float, enabled: bool = True, device: str = "d-1") -> dict[str, Any]:
    body = {"device_id": device, "user_id": "u-1", "platform": "ios", "token": "t", "enabled": enabled}
    return register_token(store, SEGMENTS, now, body)


def push_event(store: MemoryStore, kind: str, time: float) -> None:
    body = {"events": [{"type": kind, "user_id": "u-1", "time": format_instant(time)}]}
    assert record_push_events(store, SEGMENTS, SETTINGS, NOW, body).errors == []


def push_state(store: MemoryStore) -> tuple[str | None, bool]:
    profile = store.users.load_user(UserKey.of_user("u-1")).to_profile()
    return profile.push_subscription, profile.push_enabled


def test_an_enabled_token_subscribes_an_unset_subscription(store: MemoryStore) -> None:
    assert register(store, NOW)["push_enabled"] is True
    assert push_state(store) == ("subscribed", True)


def test_a_disabled_token_leaves_the_subscription_unset(store: MemoryStore) -> None:
    assert register(store, NOW, enabled=False)["push_enabled"] is False
    assert push_state(store) == (None, False)


def test_an_opted_out_user_with_a_token_is_not_push_enabled(store: MemoryStore) -> None:
    push_event(store, "opted_out", NOW - 3600)
    assert register(store, NOW)["push_enabled"] is False  # a registration never changes a set one
    assert push_state(store) == ("unsubscribed", False)
    push_event(store, "opted_in", NOW - 60)
    assert push_state(store) == ("opted_in", True)


def test_the_latest_instant_wins_whatever_the_order_of_arrival(store: MemoryStore) -> None:
    register(store, NOW)  # subscribed at its receive time
    push_event(store, "opted_out", NOW - 3600)  # older, arriving late: loses
    assert push_state(store) == ("subscribed", True)
    push_event(store, "opted_out", NOW + 60)  # newer: wins
    assert push_state(store) == ("unsubscribed", False)
    register(store, NOW + 120)  # set: unchanged
    assert push_state(store) == ("unsubscribed", False)


def test_an_opt_in_keeps_its_state_when_a_token_is_registered(store: MemoryStore) -> None:
    push_event(store, "opted_in", NOW - 3600)
    register(store, NOW)
    assert push_state(store) == ("opted_in", True)


def test_an_invalid_token_is_not_push_enabled(store: MemoryStore) -> None:
    register(store, NOW - 60)
    body = {"events": [{"type": "token_invalid", "device_id": "d-1", "time": format_instant(NOW)}]}
    record_push_events(store, SEGMENTS, SETTINGS, NOW, body)
    assert push_state(store) == ("subscribed", False)


def test_a_user_accumulates_at_most_max_event_names(store: MemoryStore) -> None:
    from kudos.ingest.track import MAX_EVENT_NAMES

    def events(names: list[str]) -> dict[str, Any]:
        time = "2026-11-22T10:00:00Z"
        return {"events": [{"external_id": "u-1", "name": name, "time": time} for name in names]}

    first = [f"event-{n}" for n in range(MAX_EVENT_NAMES - 2)]
    for start in range(0, len(first), 75):
        assert track(store, events(first[start : start + 75]))["errors"] == []
    # Two new names still fit; the third new one in the same request does not; known names always do.
    result = track(store, events(["new-a", "event-0", "new-b", "new-c", "new-a", "new-d"]))
    assert result["events_processed"] == 4
    assert [(e["index"], e["message"].split(";")[0]) for e in result["errors"]] == [
        (3, f"events[3].name: this user already has {MAX_EVENT_NAMES} event names"),
        (5, f"events[5].name: this user already has {MAX_EVENT_NAMES} event names"),
    ]
    profile = store.users.load_user(UserKey.of_user("u-1")).to_profile()
    assert len(profile.events) == MAX_EVENT_NAMES
    assert profile.events["new-a"].counts.total == 2
    assert profile.events["event-0"].counts.total == 2
    # Another user has a budget of their own.
    assert (
        track(store, {"events": [{"external_id": "u-2", "name": "new-c", "time": "2026-11-22T10:00:00Z"}]})[
            "errors"
        ]
        == []
    )
