"""The scheduled sweep through its real handler, on moto and DynamoDB Local: time alone takes a
user out of a segment, the steady sweep finds it by the due index, and the run is recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from functions import sweep
from kudos.core.identity import UserKey
from kudos.local.apigw import LambdaContext
from tests.apiclient import ApiClient

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "sweep_steady.json").read_text())


@pytest.fixture
def api(dynamodb):
    return ApiClient(dynamodb.settings, dynamodb.client, now=NOW.isoformat())


def scheduled(at: datetime, **detail: Any) -> dict[str, Any]:
    return {**EVENT, "time": at.isoformat().replace("+00:00", "Z"), "detail": detail}


def run(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = sweep.handler(event, LambdaContext(function_name="SweepFunction"))
    return result


def test_time_alone_takes_a_top_user_out_and_the_steady_sweep_finds_it(api):
    sessions = [
        {
            "session_id": f"s-{n}",
            "device_id": "d-1",
            "user_id": "u-1",
            "started_at": (NOW - timedelta(days=n + 1)).isoformat(),
        }
        for n in range(13)
    ]
    api.post("/v1/sessions", {"sessions": sessions})
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "push_subscribe": "opted_in"}]})
    assert "top_users" in api.store.users.load_user(UserKey.of_user("u-1")).memberships

    first = run(scheduled(NOW))
    assert first["kind"] == "full"  # no sweep yet: everyone once
    assert first["changes"] == 0

    # Six days on, nothing is due yet for this user: a steady sweep reads nobody.
    quiet = run(scheduled(NOW + timedelta(days=5)))
    assert (quiet["kind"], quiet["users_read"], quiet["changes"]) == ("steady", 0, 0)

    # The last session was a day before NOW: 7 days after it, last_session >= 7 days ago fails.
    later = run(scheduled(NOW + timedelta(days=6, hours=1)))
    assert later["kind"] == "steady"
    assert later["users_read"] == 1
    assert later["changes"] >= 1
    assert "top_users" not in api.store.users.load_user(UserKey.of_user("u-1")).memberships
    changes = api.get("/v1/segments/top_users/changes").body["changes"]
    assert [(c["change"], c["by"]) for c in changes] == [("exited", "sweep"), ("entered", "ingest")]
    listed = api.get("/v1/segments").body
    assert listed["last_sweep"]["users_read"] == 1
    assert next(s for s in listed["segments"] if s["name"] == "top_users")["size"] == 0


def test_a_rerun_of_the_same_sweep_records_nothing_twice(api):
    api.post(
        "/v1/sessions",
        {
            "sessions": [
                {
                    "session_id": f"s-{n}",
                    "device_id": "d-2",
                    "user_id": "u-2",
                    "started_at": (NOW - timedelta(hours=n + 1)).isoformat(),
                }
                for n in range(2)
            ]
        },
    )
    run(scheduled(NOW))
    at = NOW + timedelta(days=8)
    first = run(scheduled(at))
    again = run(scheduled(at))
    assert first["changes"] >= 1  # new_users: created more than 7 days before
    assert again["changes"] == 0
    changes = api.get("/v1/segments/new_users/changes").body["changes"]
    assert [c["change"] for c in changes] == ["exited", "entered"]
