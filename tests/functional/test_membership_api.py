"""Stored membership through the real handlers, on moto and DynamoDB Local: a user who qualifies is
a member when the ingest response is sent, the change is logged once, and the user is indexed by
the hour time alone may next change it."""

from __future__ import annotations

import pytest

from kudos.core.identity import UserKey
from kudos.core.timeutil import SECONDS_PER_DAY, day_of, parse_instant
from tests.apiclient import ApiClient

NOW = "2026-11-22T12:00:00Z"


@pytest.fixture
def api(dynamodb):
    return ApiClient(dynamodb.settings, dynamodb.client, now=NOW)


def sessions_for(user: str, count: int, device: str = "d-1"):
    return {
        "sessions": [
            {
                "session_id": f"{user}-{n}",
                "device_id": device,
                "user_id": user,
                "started_at": f"2026-11-{22 - n // 2:02}T0{n % 2}:00:00Z",
            }
            for n in range(count)
        ],
        "sent_at": NOW,
    }


def test_a_user_who_qualifies_is_a_member_when_the_response_is_sent(api):
    # new_users: created this week and at least two sessions.
    assert api.post("/v1/sessions", sessions_for("u-1", 1)).status == 201
    assert "new_users" not in api.store.users.load_user(UserKey.of_user("u-1")).memberships
    assert api.post("/v1/sessions", sessions_for("u-1", 3)).status == 201
    records = api.store.users.load_user(UserKey.of_user("u-1"))
    assert records.memberships["new_users"].since == parse_instant(NOW)
    assert api.store.memberships.members("new_users", 10, None) == [UserKey.of_user("u-1")]
    logged = api.store.memberships.changes_on_day(
        "new_users", day_of(parse_instant(NOW)), older_than=None, limit=10
    )
    assert [(c.user, c.change, c.by) for c in logged] == [(UserKey.of_user("u-1"), "entered", "ingest")]
    # Time alone takes the user out once created_at is 7 days back: the due index says when.
    assert records.due is not None
    assert parse_instant(NOW) < records.due.due <= records.activity.created_at + 7 * SECONDS_PER_DAY


def test_an_upload_that_changes_nothing_records_nothing(api):
    api.post("/v1/sessions", sessions_for("u-2", 3))
    before = api.store.users.load_user(UserKey.of_user("u-2"))
    api.post("/v1/sessions", sessions_for("u-2", 3))  # the same sessions again: duplicates
    after = api.store.users.load_user(UserKey.of_user("u-2"))
    assert after.memberships == before.memberships
    assert after.due == before.due
    logged = api.store.memberships.changes_on_day(
        "new_users", day_of(parse_instant(NOW)), older_than=None, limit=10
    )
    assert len(logged) == 1


def test_deleting_a_member_is_an_exit(api):
    api.post("/v1/sessions", sessions_for("u-3", 3))
    assert api.post("/v1/users/delete", {"external_ids": ["u-3"]}).body["deleted"] == 1
    logged = api.store.memberships.changes_on_day(
        "new_users", day_of(parse_instant(NOW)), older_than=None, limit=10
    )
    assert [c.change for c in logged] == ["exited", "entered"]
    assert api.store.memberships.count_members("new_users") == 0


def test_identify_moves_membership_to_the_identified_user(api):
    api.post(
        "/v1/sessions",
        {
            "sessions": [
                {"session_id": f"a-{n}", "device_id": "d-9", "started_at": f"2026-11-2{n}T08:00:00Z"}
                for n in range(2)
            ]
        },
    )
    assert api.store.memberships.members("new_users", 10, None) == [UserKey.of_device("d-9")]
    api.post("/v1/users/identify", {"aliases_to_identify": [{"device_id": "d-9", "external_id": "u-9"}]})
    assert api.store.memberships.members("new_users", 10, None) == [UserKey.of_user("u-9")]
