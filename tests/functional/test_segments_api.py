"""Segment routes end to end: ingest through the API, then members and explain through the API."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.apiclient import ApiClient

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(dynamodb):
    return ApiClient(dynamodb.settings, dynamodb.client, now=NOW.isoformat())


def loyal(api, user_id, sessions=15, last_days_ago=2, employee=False, push="opted_in"):
    items = [
        {
            "session_id": f"{user_id}-{n}",
            "device_id": f"dev-{user_id}",
            "user_id": user_id,
            "started_at": (NOW - timedelta(days=last_days_ago + n, hours=3)).isoformat(),
        }
        for n in range(sessions)
    ]
    assert api.post("/v1/sessions", {"sessions": items}).status == 201
    attributes = {"external_id": user_id, "push_subscribe": push, "is_employee": employee}
    assert api.post("/v1/users/track", {"attributes": [attributes]}).status == 201


def test_members_and_explain_follow_the_rules(api):
    loyal(api, "u-top")
    loyal(api, "u-employee", employee=True)
    loyal(api, "u-casual", sessions=3)
    loyal(api, "u-quiet", last_days_ago=9)
    loyal(api, "u-unsubscribed", push="unsubscribed")

    response = api.get("/v1/segments/top_users/members")
    assert response.status == 200
    assert response.body["count"] == 1
    assert response.body["members"] == [{"user_id": "u-top"}]
    assert response.body["next"] is None

    # At an earlier instant the quiet user was still recent enough (a week before now: 2 days ago).
    earlier = api.get("/v1/segments/top_users/members", at=(NOW - timedelta(days=3)).isoformat())
    assert {m["user_id"] for m in earlier.body["members"]} >= {"u-quiet"}

    explained = api.get("/v1/segments/top_users/explain", user_id="u-casual")
    assert explained.status == 200
    assert explained.body["in"] is False
    sessions_clause = next(c for c in explained.body["clauses"] if "sessions" in c["clause"])
    assert (sessions_clause["value"], sessions_clause["threshold"], sessions_clause["result"]) == (
        3,
        12,
        False,
    )
    assert api.get("/v1/segments/top_users/explain", user_id="u-top").body["in"] is True

    listed = api.get("/v1/segments")
    top = next(s for s in listed.body["segments"] if s["name"] == "top_users")
    # Stored membership: what ingest decided; no sweep has run yet to age anyone out.
    assert top["size"] == 1
    assert top["last_evaluation"] is None
    assert listed.body["last_sweep"] is None
    assert top["source"] == "segments/top_users.seg"
    assert len(top["version"]) == 12


def test_changes_are_listed_newest_first_and_paged(api):
    for n in range(3):
        api.at((NOW + timedelta(hours=n)).isoformat())
        loyal(api, f"u-{n}")
    api.at((NOW + timedelta(hours=4)).isoformat())
    assert api.post("/v1/users/delete", {"external_ids": ["u-1"]}).status == 201
    seen, token = [], None
    while True:
        page = api.get("/v1/segments/top_users/changes", limit="2", **({"next": token} if token else {})).body
        seen += [(c["user"]["user_id"], c["change"], c["by"]) for c in page["changes"]]
        token = page["next"]
        if token is None:
            break
    assert seen == [
        ("u-1", "exited", "ingest"),
        ("u-2", "entered", "ingest"),
        ("u-1", "entered", "ingest"),
        ("u-0", "entered", "ingest"),
    ]
    window = api.get(
        "/v1/segments/top_users/changes",
        **{"from": (NOW + timedelta(minutes=30)).isoformat(), "to": (NOW + timedelta(hours=3)).isoformat()},
    ).body
    assert [c["user"]["user_id"] for c in window["changes"]] == ["u-2", "u-1"]
    assert api.get("/v1/segments/top_users/changes", next="garbage!").status == 400
    assert api.get("/v1/segments/nope/changes").status == 404


def test_members_are_paged_with_an_opaque_token(api):
    for n in range(5):
        loyal(api, f"u-{n}")
    seen, token, pages = [], None, 0
    while True:
        query = {"limit": "2", **({"next": token} if token else {})}
        page = api.get("/v1/segments/top_users/members", **query).body
        assert page["count"] == 5
        seen += [m["user_id"] for m in page["members"]]
        pages += 1
        token = page["next"]
        if token is None:
            break
    assert sorted(seen) == [f"u-{n}" for n in range(5)]
    assert pages == 3


def forged_token(**fields):
    token = {"at": 1795000000.0, "after": "u:x", **fields}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/v1/segments/nope/members", {}, 404),
        ("/v1/segments/nope/explain", {"user_id": "u"}, 404),
        ("/v1/segments/top_users/explain", {"user_id": "u-missing"}, 404),
        ("/v1/segments/top_users/explain", {}, 400),
        ("/v1/segments/top_users/explain", {"user_id": "a", "device_id": "b"}, 400),
        ("/v1/segments/top_users/explain", {"user_id": ""}, 400),
        ("/v1/segments/top_users/members", {"at": "yesterday"}, 400),
        ("/v1/segments/top_users/members", {"at": "2026-11-22T10:00:00"}, 400),
        ("/v1/segments/top_users/members", {"limit": "0"}, 400),
        ("/v1/segments/top_users/members", {"limit": "lots"}, 400),
        ("/v1/segments/top_users/members", {"next": "garbage!"}, 400),
        ("/v1/segments/top_users/members", {"limit": "\u00b2"}, 400),  # a digit to str.isdigit
        ("/v1/segments/top_users/members", {"at": "0001-01-01T00:00:00+01:00"}, 400),
        ("/v1/segments/top_users/members", {"at": "9999-12-31T23:59:59Z"}, 400),
        ("/v1/segments/top_users/explain", {"user_id": "u", "at": "0001-01-01T00:00:00Z"}, 400),
        ("/v1/segments/top_users/members", {"next": forged_token(at=float("nan"))}, 400),
        ("/v1/segments/top_users/members", {"next": forged_token(at=1e300)}, 400),
        ("/v1/segments/top_users/members", {"next": forged_token(at="soon")}, 400),
        ("/v1/segments/top_users/members", {"next": base64.urlsafe_b64encode(b"[1]").decode()}, 400),
        (
            "/v1/segments/top_users/members",
            {"next": base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode()},
            400,
        ),
    ],
)
def test_segment_route_errors(api, path, query, status):
    response = api.get(path, **query)
    assert response.status == status
    assert response.body["message"]
    # Nothing a bad request did is left behind for the listing to trip on.
    assert api.get("/v1/segments").status == 200


def test_an_unknown_user_is_named_in_words_not_as_a_dict(api):
    response = api.get("/v1/segments/top_users/explain", device_id="d-99")
    assert response.status == 404
    assert response.body["message"] == 'no user with device_id "d-99"'
