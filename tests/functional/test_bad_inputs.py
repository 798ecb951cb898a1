"""Malformed requests: a clear 4xx or item error naming the field, never a 5xx, never a lost good item."""

from __future__ import annotations

import json

import pytest

from kudos.core.identity import UserKey
from tests.apiclient import ApiClient

GOOD = {"session_id": "good", "device_id": "d-1", "started_at": "2026-11-21T10:00:00Z"}
ROUTES = [
    "/v1/sessions",
    "/v1/users/track",
    "/v1/users/identify",
    "/v1/users/delete",
    "/v1/push/events",
    "/v1/push/tokens",
]


@pytest.fixture
def api(dynamodb):
    return ApiClient(dynamodb.settings, dynamodb.client, now="2026-11-22T09:00:00Z")


def nested(depth):
    return "[" * depth + "]" * depth


REQUEST_ERRORS = [
    pytest.param(b"", 400, "empty", id="empty-body"),
    pytest.param(b"{not json", 400, "not valid JSON", id="not-json"),
    pytest.param(b"[1, 2]", 400, "JSON object", id="array-body"),
    pytest.param(b'"text"', 400, "JSON object", id="string-body"),
    pytest.param(b'{"sessions": [], "x": NaN}', 400, "NaN", id="nan"),
    pytest.param(b'{"sessions": [], "x": Infinity}', 400, "Infinity", id="infinity"),
    pytest.param(('{"sessions": ' + nested(100_000) + "}").encode(), 400, "nested", id="deep-nesting"),
    pytest.param(b"\xff\xfe{}", 400, "", id="not-utf8"),
    pytest.param(
        json.dumps({"sessions": "nope"}).encode(), 400, "sessions: expected a list", id="sessions-not-list"
    ),
    pytest.param(json.dumps({"sessions": [GOOD] * 501}).encode(), 400, "at most 500", id="too-many-sessions"),
    pytest.param(
        json.dumps({"sent_at": "2026-11-22T09:00:00", "sessions": [GOOD]}).encode(),
        400,
        "sent_at: no time zone",
        id="sent-at-no-zone",
    ),
    pytest.param(json.dumps({"x": "a" * 1_000_001}).encode(), 413, "bytes", id="oversize"),
]


@pytest.mark.parametrize(("raw", "status", "fragment"), REQUEST_ERRORS)
def test_unusable_sessions_requests(api, raw, status, fragment):
    response = api.post("/v1/sessions", raw_body=raw)
    assert response.status == status
    assert fragment in response.body["message"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("raw", [b"", b"{bad", b"[]", b"null", b'{"a": NaN}', nested(50_000).encode()])
def test_every_route_answers_garbage_with_a_400(api, route, raw):
    response = api.post(route, raw_body=raw)
    assert response.status == 400, response.body
    assert response.body["message"]


ITEM_ERRORS = [
    pytest.param({**GOOD, "session_id": ""}, "sessions[1].session_id", "must not be empty", id="empty-id"),
    pytest.param({**GOOD, "session_id": "x" * 300}, "sessions[1].session_id", "longer than", id="huge-id"),
    pytest.param({**GOOD, "device_id": 42}, "sessions[1].device_id", "expected a string", id="number-id"),
    pytest.param({**GOOD, "device_id": None}, "sessions[1].device_id", "expected a string", id="null-id"),
    pytest.param(
        {"session_id": "x", "device_id": "d"}, "sessions[1].started_at", "is required", id="missing-start"
    ),
    pytest.param(
        {**GOOD, "started_at": "2026-11-21T10:00:00"}, "sessions[1].started_at", "no time zone", id="no-zone"
    ),
    pytest.param(
        {**GOOD, "started_at": "yesterday"}, "sessions[1].started_at", "RFC 3339", id="garbage-time"
    ),
    pytest.param({**GOOD, "started_at": 1763719200}, "sessions[1].started_at", "RFC 3339", id="epoch-number"),
    pytest.param(
        {**GOOD, "started_at": "2026-02-30T10:00:00Z"}, "sessions[1].started_at", "RFC 3339", id="no-such-day"
    ),
    pytest.param(
        {**GOOD, "ended_at": "2026-11-21T09:00:00Z"},
        "sessions[1].ended_at",
        "before started_at",
        id="ends-before",
    ),
    pytest.param(
        {**GOOD, "platform": ["ios"]}, "sessions[1].platform", "expected a string", id="list-platform"
    ),
    pytest.param([1], "sessions[1]", "expected an object", id="list-item"),
    # 256 characters, but 1024 bytes in UTF-8: more than a DynamoDB sort key holds.
    pytest.param({**GOOD, "session_id": "😀" * 256}, "sessions[1].session_id", "bytes", id="wide-id"),
    pytest.param({**GOOD, "device_id": "d\ud800"}, "sessions[1].device_id", "surrogate", id="surrogate-id"),
    pytest.param({**GOOD, "country": "\udfff"}, "sessions[1].country", "surrogate", id="surrogate-text"),
]


@pytest.mark.parametrize(("bad", "field", "fragment"), ITEM_ERRORS)
def test_a_bad_session_is_reported_by_field_and_the_good_one_kept(api, bad, field, fragment):
    good = {**GOOD, "session_id": "kept"}
    response = api.post("/v1/sessions", {"sessions": [good, bad]})
    assert response.status == 201
    assert response.body["new_sessions"] == 1
    [error] = response.body["errors"]
    assert (error["index"], error["field"], error["input_array"]) == (1, field, "sessions")
    assert error["message"].startswith(f"{field}: ")
    assert fragment in error["message"]


def purchase(**fields):
    return {
        "external_id": "u",
        "product_id": "p",
        "currency": "USD",
        "price": 1,
        "time": "2026-11-21T10:00:00Z",
        **fields,
    }


TRACK_ITEM_ERRORS = [
    # Numbers DynamoDB cannot store: 38 significant digits, magnitudes 1e-130 to 1e126.
    pytest.param("attributes", {"external_id": "u", "score": 1e200}, "attributes[0].score", id="huge-number"),
    pytest.param(
        "attributes", {"external_id": "u", "score": 1e-200}, "attributes[0].score", id="tiny-number"
    ),
    pytest.param(
        "attributes", {"external_id": "u", "score": 10**40 + 1}, "attributes[0].score", id="long-int"
    ),
    pytest.param(
        "attributes", {"external_id": "u", "visits": {"inc": 1e130}}, "attributes[0].visits", id="huge-inc"
    ),
    pytest.param(
        "attributes", {"external_id": "u", "\ud800": 1}, "attributes[0].\ud800", id="surrogate-name"
    ),
    pytest.param("attributes", {"external_id": "u", "x": "a\ud800"}, "attributes[0].x", id="surrogate-value"),
    pytest.param(
        "attributes", {"external_id": "u", "l": ["ok", "\udc00"]}, "attributes[0].l", id="surrogate-list"
    ),
    pytest.param("attributes", {"external_id": "u", "l": ["y" * 9000]}, "attributes[0].l", id="long-element"),
    pytest.param(
        "attributes", {"external_id": "u", "l": {"add": ["y" * 9000]}}, "attributes[0].l", id="long-added"
    ),
    pytest.param("purchases", purchase(price=10**400), "purchases[0].price", id="price-overflows-a-float"),
    pytest.param("purchases", purchase(price=5e-324), "purchases[0].price", id="tiny-price"),
    pytest.param(
        "purchases", purchase(price=1e308, quantity=100), "purchases[0].price", id="price-times-100"
    ),
    pytest.param(
        "events",
        {"external_id": "u", "name": "😀" * 255, "time": "2026-11-21T10:00:00Z"},
        "events[0].name",
        id="wide-name",
    ),
    pytest.param("attributes", {"first_name": "Ana"}, "attributes[0]", id="no-user"),
    pytest.param(
        "attributes", {"external_id": "u", "country": 7}, "attributes[0].country", id="number-country"
    ),
    pytest.param(
        "attributes",
        {"external_id": "u", "push_subscribe": "yes"},
        "attributes[0].push_subscribe",
        id="bad-sub",
    ),
    pytest.param(
        "attributes", {"external_id": "u", "visits": {"inc": "1"}}, "attributes[0].visits", id="bad-inc"
    ),
    pytest.param(
        "attributes", {"external_id": "u", "tags": {"add": [1]}}, "attributes[0].tags", id="bad-add"
    ),
    pytest.param(
        "attributes", {"external_id": "u", "x": {"nested": 1}}, "attributes[0].x", id="object-value"
    ),
    pytest.param(
        "attributes", {"external_id": "", "plan": "gold"}, "attributes[0].external_id", id="empty-id"
    ),
    pytest.param(
        "events",
        {"external_id": "u", "name": "x", "time": "2026-11-21T10:00:00"},
        "events[0].time",
        id="no-zone",
    ),
    pytest.param(
        "events", {"external_id": "u", "time": "2026-11-21T10:00:00Z"}, "events[0].name", id="no-name"
    ),
    pytest.param(
        "events",
        {"external_id": "u", "name": "", "time": "2026-11-21T10:00:00Z"},
        "events[0].name",
        id="empty-name",
    ),
    pytest.param(
        "purchases",
        {
            "external_id": "u",
            "product_id": "p",
            "currency": "USD",
            "price": "9",
            "time": "2026-11-21T10:00:00Z",
        },
        "purchases[0].price",
        id="string-price",
    ),
    pytest.param(
        "purchases",
        {
            "external_id": "u",
            "product_id": "p",
            "currency": "USD",
            "price": -1,
            "time": "2026-11-21T10:00:00Z",
        },
        "purchases[0].price",
        id="negative-price",
    ),
    pytest.param(
        "purchases",
        {
            "external_id": "u",
            "product_id": "p",
            "currency": "USD",
            "price": 1,
            "quantity": 0,
            "time": "2026-11-21T10:00:00Z",
        },
        "purchases[0].quantity",
        id="zero-quantity",
    ),
]


@pytest.mark.parametrize(("array", "bad", "field"), TRACK_ITEM_ERRORS)
def test_a_bad_track_object_is_skipped_and_the_others_kept(api, array, bad, field):
    good_event = {"external_id": "u-ok", "name": "opened_app", "time": "2026-11-21T10:00:00Z"}
    body = {array: [bad], "events": [*([bad] if array == "events" else []), good_event]}
    response = api.post("/v1/users/track", body)
    assert response.status == 201, response.body
    assert response.body["events_processed"] == 1
    [error] = response.body["errors"]
    assert (error["input_array"], error["index"], error["field"]) == (array, 0, field)


def test_attributes_that_pile_up_past_the_item_limit_are_refused_one_by_one(api):
    # 100 KB of attributes per user at most: the third object of ~40 KB would pass it.
    big = {f"field_{n}": "x" * 1000 for n in range(40)}
    objects = [
        {"external_id": "u-1", **{f"{name}_{batch}": v for name, v in big.items()}} for batch in range(3)
    ]
    objects.append({"external_id": "u-1", "plan": "gold"})
    response = api.post("/v1/users/track", {"attributes": objects})
    assert response.status == 201, response.body
    assert response.body["attributes_processed"] == 3
    [error] = response.body["errors"]
    assert (error["input_array"], error["index"], error["field"]) == ("attributes", 2, "attributes[2]")
    assert "100 KB" in error["message"]
    later = api.post(
        "/v1/users/track", {"attributes": [{"external_id": "u-1", "field_0_0": None, "more": "y" * 1000}]}
    )
    assert later.body["errors"] == []
    custom = api.store.users.load_user(UserKey("u-1", None)).to_profile().custom
    assert (custom["plan"], custom["more"]) == ("gold", "y" * 1000)
    assert ("field_0_0" in custom, "field_0_2" in custom, "field_39_1" in custom) == (False, False, True)


def test_an_increment_past_what_can_be_stored_is_refused(api):
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "score": 9e125}]})
    response = api.post(
        "/v1/users/track",
        {
            "attributes": [
                {"external_id": "u-1", "score": {"inc": 9e125}},
                {"external_id": "u-1", "plan": "gold"},
            ]
        },
    )
    assert response.status == 201
    [error] = response.body["errors"]
    assert error["index"] == 0
    assert "score: inc: the total would be out of range" in error["message"]
    custom = api.store.users.load_user(UserKey("u-1", None)).to_profile().custom
    assert (custom["score"], custom["plan"]) == (9 * 10**125, "gold")


def test_track_limits_are_whole_request_errors(api):
    response = api.post("/v1/users/track", {"attributes": [{"external_id": "u"}] * 76})
    assert response.status == 400
    assert "attributes" in response.body["message"]
    assert api.post("/v1/users/track", {"nothing": []}).status == 400


def test_unknown_route_is_404_and_wrong_method_405(api):
    assert api.get("/v1/sessions").status == 405
    assert api.request("DELETE", "/v1/users/track").status == 405
    assert api.post("/v1/metrics/active-users", {}).status == 405
    assert api.post("/v1/push/unknown", {}).status == 404


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        # Today is 2026-11-22: no figures for days to come.
        (
            {"from": "2026-11-30"},
            "from: 2026-11-30 is after today (2026-11-22); there are no figures for days to come",
        ),
        ({"from": "2026-11-23", "to": "2026-11-30"}, "from: 2026-11-23 is after today (2026-11-22)"),
        ({"from": "2026-11-31", "to": "2026-12-01"}, "from:"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "after"),
        ({"from": "2020-01-01", "to": "2026-11-01"}, "at most"),
        ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-02"}, "from:"),
    ],
)
def test_bad_metrics_queries(api, query, fragment):
    response = api.get("/v1/metrics/active-users", **query)
    assert response.status == 400
    assert fragment in response.body["message"]


def test_a_to_after_today_stops_at_today(api):
    response = api.get("/v1/metrics/active-users", **{"from": "2026-11-21", "to": "2027-01-01"})
    assert response.status == 200
    assert [day["date"] for day in response.body["days"]] == ["2026-11-21", "2026-11-22"]


def test_keys_are_enforced_when_configured(dynamodb):
    settings = dynamodb.settings.model_copy(
        update={"app_keys": frozenset({"app-secret"}), "server_keys": frozenset({"srv"})}
    )
    api = ApiClient(settings, dynamodb.client)
    body = {"sessions": [GOOD]}
    assert api.post("/v1/sessions", body).status == 401
    assert api.post("/v1/sessions", body, headers={"x-api-key": "srv"}).status == 401
    assert api.post("/v1/sessions", body, headers={"x-api-key": "app-secret"}).status == 201
    # Routing comes first: a wrong method or path is a 405 or 404 with or without a key.
    assert api.request("GET", "/v1/sessions").status == 405
    assert api.request("GET", "/v1/nothing").status == 404
    assert (
        api.request(
            "GET",
            "/v1/metrics/active-users",
            query={"from": "2026-11-21", "to": "2026-11-21"},
            headers={"authorization": "Bearer srv"},
        ).status
        == 200
    )
