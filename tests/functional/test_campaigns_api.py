"""Campaign routes end to end, on moto and DynamoDB Local: users enter `top_users` through the ingest
routes, `thank_top_users` (segments/top_users.seg: send on entry, 10% holdout) triggers, and the
campaign routes list, page, explain, pause and resume; the sender takes queued sends with a recording
push service."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from kudos.campaigns.rules import holdout_position
from kudos.campaigns.sender import deliver
from kudos.core.identity import UserKey
from kudos.core.timeutil import parse_instant
from kudos.runtime import services
from kudos.segments.membership import reevaluate
from kudos.store.memory import MemorySendQueue, RecordingPush
from kudos.store.ports import CampaignState
from tests.apiclient import ApiClient

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CAMPAIGN = "thank_top_users"
REPORT = f"/v1/campaigns/{CAMPAIGN}/report"
STATUSES = {
    "queued",
    "held",
    "paused",
    "not_eligible",
    "unreachable",
    "held_out",
    "expired",
    "dismissed",
    "capped",
    "failed",
    "sent",
}


def outside_holdout(prefix: str, count: int) -> list[str]:
    """User ids the campaign's 10% holdout leaves in (the hash is stable: the same ids every run)."""
    ids = (f"{prefix}-{n}" for n in range(1000))
    return [
        user_id
        for user_id in ids
        if holdout_position(CAMPAIGN, UserKey.of_user(user_id)) >= 0.1  # holdout 10%
    ][:count]


@pytest.fixture
def api(dynamodb):
    client = ApiClient(dynamodb.settings, dynamodb.client, now=NOW.isoformat())
    # The send queue is SQS on AWS; here the test takes the messages and runs the sender itself.
    client.store.send_queue = MemorySendQueue()  # type: ignore[assignment]
    return client


def enter(api, user_id, *, token=True, first_name=None):
    """A user who enters top_users now, with a push token unless told otherwise."""
    now = api.now
    if token:
        body = {"device_id": f"dev-{user_id}", "user_id": user_id, "platform": "ios", "token": f"t-{user_id}"}
        assert api.post("/v1/push/tokens", {**body, "enabled": True}).status == 201
    sessions = [
        {
            "session_id": f"{user_id}-{n}",
            "device_id": f"dev-{user_id}",
            "user_id": user_id,
            "started_at": datetime.fromtimestamp(now - (n + 1) * 86_400, UTC).isoformat(),
        }
        for n in range(14)
    ]
    assert api.post("/v1/sessions", {"sessions": sessions}).status == 201
    attributes = {"external_id": user_id, "push_subscribe": "opted_in"}
    if first_name:
        attributes["first_name"] = first_name
    assert api.post("/v1/users/track", {"attributes": [attributes]}).status == 201


def drain(api, push):
    """The sender takes every queued message, as SendFunction would."""
    svc = services()
    segments = svc.segments()
    done = []
    for message in api.store.send_queue.take():
        done.append(
            deliver(
                api.store,
                push,
                segments,
                message,
                svc.clock,
                lambda user, at: reevaluate(api.store, segments, user, at, "ingest"),
            )
        )
    return done


def campaign_entry(api, name=CAMPAIGN):
    response = api.get("/v1/campaigns")
    assert response.status == 200, response.body
    return next(c for c in response.body["campaigns"] if c["name"] == name)


def test_the_list_shows_each_campaign_as_written_with_its_send_counts(api):
    listed = campaign_entry(api)
    assert listed == {
        "name": CAMPAIGN,
        "title": "Thank you, top users",
        "audience": "top_users",
        "trigger": "send on entry",
        # No sweep has found it yet: active, with no `since`.
        "status": "active",
        "source": "segments/top_users.seg",
        "since": None,
        "reason": None,
        "counts": dict.fromkeys(STATUSES, 0),
    }
    (reachable,) = outside_holdout("u-reach", 1)
    enter(api, reachable)
    enter(api, "u-no-token", token=False)
    counts = campaign_entry(api)["counts"]
    assert {status: n for status, n in counts.items() if n} == {"queued": 1, "unreachable": 1}
    assert set(counts) == STATUSES
    drain(api, RecordingPush())
    counts = campaign_entry(api)["counts"]
    assert {status: n for status, n in counts.items() if n} == {"sent": 1, "unreachable": 1}


def test_a_campaign_removed_from_the_files_is_listed_paused_with_its_sends(api):
    api.store.campaigns.save_state(
        CampaignState("old_campaign", first_seen=parse_instant("2026-10-01T00:00:00Z"))
    )
    removed = campaign_entry(api, "old_campaign")
    assert (removed["status"], removed["reason"], removed["trigger"], removed["source"]) == (
        "paused",
        "removed",
        None,
        None,
    )
    assert api.get("/v1/campaigns/old_campaign/sends").body == {
        "campaign": "old_campaign",
        "sends": [],
        "next": None,
    }
    # Nothing to pause or resume: it sends nothing any more.
    assert api.post("/v1/campaigns/old_campaign/pause").status == 404
    assert api.post("/v1/campaigns/old_campaign/resume").status == 404


def test_sends_are_listed_newest_first_and_paged(api):
    users = outside_holdout("u-page", 5)
    for hour, user_id in enumerate(users):
        api.at((NOW + timedelta(hours=hour)).isoformat())
        enter(api, user_id, first_name="Ana")
    seen, token, pages = [], None, 0
    while True:
        page = api.get(f"/v1/campaigns/{CAMPAIGN}/sends", limit="2", **({"next": token} if token else {}))
        assert page.status == 200, page.body
        seen += page.body["sends"]
        pages += 1
        token = page.body["next"]
        if token is None:
            break
    assert pages == 3
    assert [send["user"]["user_id"] for send in seen] == users[::-1]
    assert len({send["send_id"] for send in seen}) == 5
    assert all(send["status"] == "queued" and send["trigger"] == "entry" for send in seen)
    assert seen[0]["triggered_at"] == (NOW + timedelta(hours=4)).isoformat().replace("+00:00", "Z")

    # After the sender: the title and body that went out, and when.
    api.at((NOW + timedelta(hours=5)).isoformat())
    push = RecordingPush()
    drain(api, push)
    assert len(push.published) == 5
    newest = api.get(f"/v1/campaigns/{CAMPAIGN}/sends", limit="1").body["sends"][0]
    assert (newest["status"], newest["title"], newest["sent_at"]) == (
        "sent",
        "Thank you, Ana!",
        "2026-11-22T17:00:00Z",
    )
    assert newest["body"].startswith("You're one of our top users: 500 coins")

    # One user's sends; a token of that listing does not page another.
    mine = api.get(f"/v1/campaigns/{CAMPAIGN}/sends", user_id=users[1])
    assert mine.status == 200
    assert mine.body["user"] == {"user_id": users[1]}
    assert [send["user"] for send in mine.body["sends"]] == [{"user_id": users[1]}]
    first = api.get(f"/v1/campaigns/{CAMPAIGN}/sends", limit="1").body["next"]
    crossed = api.get(f"/v1/campaigns/{CAMPAIGN}/sends", user_id=users[1], next=first)
    assert crossed.status == 400
    assert crossed.body["message"] == "next: the token belongs to another user_id or device_id"


def test_pause_makes_a_queued_send_end_paused_and_resume_lets_triggers_through_again(api):
    first, second = outside_holdout("u-pause", 2)
    enter(api, first)
    paused = api.post(f"/v1/campaigns/{CAMPAIGN}/pause", {"reason": "reward stock ran out"})
    assert paused.status == 200, paused.body
    assert paused.body == {
        "campaign": CAMPAIGN,
        "status": "paused",
        "since": "2026-11-22T12:00:00Z",
        "reason": "reward stock ran out",
        "changed": True,
    }
    # Idempotent: a second pause changes nothing, not even the reason.
    api.at((NOW + timedelta(minutes=1)).isoformat())
    again = api.post(f"/v1/campaigns/{CAMPAIGN}/pause")
    assert (again.status, again.body["changed"], again.body["since"]) == (200, False, "2026-11-22T12:00:00Z")
    listed = campaign_entry(api)
    assert (listed["status"], listed["since"], listed["reason"]) == (
        "paused",
        "2026-11-22T12:00:00Z",
        "reward stock ran out",
    )

    # The sender takes the send queued before the pause: it ends paused, and nothing is published.
    push = RecordingPush()
    (taken,) = drain(api, push)
    assert taken is not None
    assert taken.status == "paused"
    assert push.published == []
    (send,) = api.get(f"/v1/campaigns/{CAMPAIGN}/sends", user_id=first).body["sends"]
    assert (send["status"], send["reason"]) == ("paused", "paused by hand: reward stock ran out")
    # A trigger while paused is recorded paused.
    enter(api, second)
    assert api.store.send_queue.take() == []
    (send,) = api.get(f"/v1/campaigns/{CAMPAIGN}/sends", user_id=second).body["sends"]
    assert send["status"] == "paused"
    explained = api.get(f"/v1/campaigns/{CAMPAIGN}/explain", user_id=second).body
    assert explained["would_send"] is False
    assert explained["stop"]["rule"] == "paused"

    api.at((NOW + timedelta(minutes=2)).isoformat())
    resumed = api.post(f"/v1/campaigns/{CAMPAIGN}/resume")
    assert resumed.body == {
        "campaign": CAMPAIGN,
        "status": "active",
        "since": "2026-11-22T12:02:00Z",
        "reason": None,
        "changed": True,
    }
    assert api.post(f"/v1/campaigns/{CAMPAIGN}/resume").body["changed"] is False
    assert api.get(f"/v1/campaigns/{CAMPAIGN}/explain", user_id=second).body["would_send"] is True


def test_the_report_counts_each_trigger_by_its_outcome_and_day(api):
    (reachable,) = outside_holdout("u-report", 1)
    enter(api, reachable)
    enter(api, "u-report-no-token", token=False)
    push = RecordingPush()
    (sent,) = [send for send in drain(api, push) if send is not None]
    opened = {"type": "opened", "user_id": reachable, "campaign_id": CAMPAIGN, "send_id": sent.send_id}
    assert api.post("/v1/push/events", {"events": [{**opened, "time": NOW.isoformat()}]}).status == 201
    report = api.get(REPORT).body
    assert (report["triggers"], report["sent"], report["unreachable"], report["held_out"]) == (2, 1, 1, 0)
    assert (report["opens"], report["direct_opens"], report["delivered"]) == (1, 1, 1)
    # thank_top_users converts on claimed_reward: nobody did, and nobody was held out to compare with.
    assert (report["conversions"], report["conversion_rate"], report["lift"]) == (0, 0.0, None)
    assert report["control_conversion_rate"] is None
    (day,) = report["days"]
    assert day["date"] == "2026-11-22"
    assert day["triggers"] == 2
    assert api.get(REPORT, **{"from": "2026-11-23"}).body["triggers"] == 0


def test_resume_clears_a_guardrail_pause(api):
    api.store.campaigns.save_state(
        CampaignState(
            CAMPAIGN,
            first_seen=parse_instant("2026-11-01T00:00:00Z"),
            status="paused_by_guardrail",
            since=parse_instant("2026-11-20T00:00:00Z"),
            reason="opt_outs 3.1% above 2% after 100 sends",
        )
    )
    assert campaign_entry(api)["status"] == "paused_by_guardrail"
    # Pausing a paused campaign changes nothing, whoever paused it.
    assert api.post(f"/v1/campaigns/{CAMPAIGN}/pause").body["status"] == "paused_by_guardrail"
    resumed = api.post(f"/v1/campaigns/{CAMPAIGN}/resume").body
    assert (resumed["status"], resumed["reason"], resumed["changed"]) == ("active", None, True)


def test_explain_says_whether_a_trigger_now_would_send_and_what(api):
    late, queued = outside_holdout("u-explain", 2)
    # Entered before registering a token: that trigger ended unreachable, which does not count for
    # eligibility; with the token now, a trigger would send.
    enter(api, late, token=False, first_name="Ana")
    token = {
        "device_id": f"dev-{late}",
        "user_id": late,
        "platform": "ios",
        "token": "t-late",
        "enabled": True,
    }
    assert api.post("/v1/push/tokens", token).status == 201
    before = api.get(f"/v1/campaigns/{CAMPAIGN}/explain", user_id=late)
    assert before.status == 200, before.body
    body = before.body
    assert (body["campaign"], body["user"], body["at"], body["status"]) == (
        CAMPAIGN,
        {"user_id": late},
        "2026-11-22T12:00:00Z",
        "active",
    )
    assert body["would_send"] is True
    assert body["stop"] is None
    assert [rule["rule"] for rule in body["rules"]] == [
        "paused",
        "not_eligible",
        "unreachable",
        "held_out",
        "dismissed",
        "capped",
        "quiet_hours",
        "render",
    ]
    assert not any(rule["stops"] for rule in body["rules"])
    assert body["push"]["title"] == "Thank you, Ana!"
    assert body["push"]["deep_link"] == "myapp://rewards/top"
    assert [send["status"] for send in body["history"]] == ["unreachable"]

    # A trigger still queued makes the next one not eligible, until it is sent and after.
    enter(api, queued)
    waiting = api.get(f"/v1/campaigns/{CAMPAIGN}/explain", user_id=queued).body
    assert waiting["would_send"] is False
    assert (waiting["stop"]["rule"], waiting["stop"]["reason"], waiting["stop"]["seen"]) == (
        "not_eligible",
        "a trigger of this campaign is still queued",
        "2026-11-22T12:00:00Z",
    )
    assert [send["status"] for send in waiting["history"]] == ["queued"]
    user_id = queued

    drain(api, RecordingPush())
    after = api.get(f"/v1/campaigns/{CAMPAIGN}/explain", user_id=user_id).body
    assert after["would_send"] is False
    assert after["stop"]["rule"] == "not_eligible"
    assert after["stop"]["status"] == "not_eligible"
    # The value seen: the trigger that was sent, as an instant.
    assert after["stop"]["seen"] == "2026-11-22T12:00:00Z"
    assert [send["status"] for send in after["history"]] == ["sent"]

    # Quiet hours at 23:00 UTC (the user's zone is unset: UTC); not_eligible still comes first.
    night = api.get(f"/v1/campaigns/{CAMPAIGN}/explain", user_id=user_id, at="2026-11-22T23:00:00Z").body
    quiet = next(rule for rule in night["rules"] if rule["rule"] == "quiet_hours")
    assert (quiet["stops"], quiet["status"], quiet["seen"], quiet["until"]) == (
        True,
        "held",
        "23:00",
        "2026-11-23T08:00:00Z",
    )
    assert night["stop"]["rule"] == "not_eligible"


def test_explain_names_the_first_rule_that_stops_a_trigger(api):
    enter(api, "u-silent", token=False)
    explained = api.get(f"/v1/campaigns/{CAMPAIGN}/explain", user_id="u-silent").body
    assert explained["would_send"] is False
    assert explained["stop"] == {
        "rule": "unreachable",
        "stops": True,
        "status": "unreachable",
        "reason": "no valid, enabled push token",
        "seen": False,
    }
    # A user outside the audience: dismissed by the sender, were it triggered.
    (casual_id,) = outside_holdout("u-casual", 1)
    assert (
        api.post("/v1/users/track", {"attributes": [{"external_id": casual_id, "country": "FR"}]}).status
        == 201
    )
    register = {
        "device_id": "d-casual",
        "user_id": casual_id,
        "platform": "ios",
        "token": "t",
        "enabled": True,
    }
    assert api.post("/v1/push/tokens", register).status == 201
    casual = api.get(f"/v1/campaigns/{CAMPAIGN}/explain", user_id=casual_id).body
    assert (casual["stop"]["rule"], casual["stop"]["status"]) == ("dismissed", "dismissed")
    assert casual["history"] == []


def test_a_device_identified_as_a_user_answers_for_that_user(api):
    (user_id,) = outside_holdout("u-ident", 1)
    enter(api, user_id)
    assert (
        api.post("/v1/users/track", {"attributes": [{"device_id": "d-anon", "country": "FR"}]}).status == 201
    )
    identify = {"aliases_to_identify": [{"device_id": "d-anon", "external_id": user_id}]}
    assert api.post("/v1/users/identify", identify).status == 201
    explained = api.get(f"/v1/campaigns/{CAMPAIGN}/explain", device_id="d-anon")
    assert explained.status == 200, explained.body
    assert explained.body["user"] == {"user_id": user_id}
    assert len(explained.body["history"]) == 1
    mine = api.get(f"/v1/campaigns/{CAMPAIGN}/sends", device_id="d-anon").body
    assert [send["user"] for send in mine["sends"]] == [{"user_id": user_id}]


def token(**fields):
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()


SENDS = f"/v1/campaigns/{CAMPAIGN}/sends"
EXPLAIN = f"/v1/campaigns/{CAMPAIGN}/explain"


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "status", "message"),
    [
        ("GET", "/v1/campaigns/nope/sends", {}, None, 404, "no campaign named 'nope'"),
        ("GET", "/v1/campaigns/nope/explain", {"user_id": "u-1"}, None, 404, "no campaign named 'nope'"),
        ("POST", "/v1/campaigns/nope/pause", {}, None, 404, "no campaign named 'nope'"),
        ("POST", "/v1/campaigns/nope/resume", {}, None, 404, "no campaign named 'nope'"),
        ("GET", SENDS, {"limit": "0"}, None, 400, "limit: expected a whole number from 1 to 1000"),
        ("GET", SENDS, {"limit": "1001"}, None, 400, "limit: expected a whole number from 1 to 1000"),
        ("GET", SENDS, {"limit": "lots"}, None, 400, "limit: expected a whole number from 1 to 1000"),
        ("GET", SENDS, {"next": "garbage!"}, None, 400, "next: not a token this API returned"),
        (
            "GET",
            SENDS,
            {"next": token(at="soon", id="x", user=None)},
            None,
            400,
            "next: not a token this API returned",
        ),
        (
            "GET",
            SENDS,
            {"next": token(at=float("nan"), id="x", user=None)},
            None,
            400,
            "next: not a token this API returned",
        ),
        (
            "GET",
            SENDS,
            {"next": token(at=1e300, id="x", user=None)},
            None,
            400,
            "next: not a token this API returned",
        ),
        (
            "GET",
            SENDS,
            {"next": token(at=1795000000.0, id=7, user=None)},
            None,
            400,
            "next: not a token this API returned",
        ),
        (
            "GET",
            SENDS,
            {"next": token(at=1795000000.0, id="")},
            None,
            400,
            "next: not a token this API returned",
        ),
        (
            "GET",
            SENDS,
            {"next": token(at=1795000000.0, id="x", user="u:u-1")},
            None,
            400,
            "next: the token belongs to another user_id or device_id",
        ),
        (
            "GET",
            SENDS,
            {"next": base64.urlsafe_b64encode(b"[1]").decode()},
            None,
            400,
            "next: not a token this API returned",
        ),
        (
            "GET",
            SENDS,
            {"user_id": "u-1", "device_id": "d-1"},
            None,
            400,
            "user_id: give exactly one of user_id and device_id",
        ),
        ("GET", SENDS, {"user_id": "u-missing"}, None, 404, 'no user with user_id "u-missing"'),
        ("GET", SENDS, {"user_id": ""}, None, 400, "user_id: must not be empty"),
        ("GET", EXPLAIN, {}, None, 400, "user_id: give exactly one of user_id and device_id"),
        (
            "GET",
            EXPLAIN,
            {"user_id": "a", "device_id": "b"},
            None,
            400,
            "user_id: give exactly one of user_id and device_id",
        ),
        ("GET", EXPLAIN, {"device_id": "d-99"}, None, 404, 'no user with device_id "d-99"'),
        ("GET", REPORT, {"from": "2026-11-31"}, None, 400, None),
        ("GET", REPORT, {"to": "22/11/2026"}, None, 400, None),
        ("GET", REPORT, {"from": "2026-11-22", "to": "2026-11-01"}, None, 400, "from: after to"),
        (
            "GET",
            "/v1/campaigns/no_such_campaign/report",
            {},
            None,
            404,
            "no campaign named 'no_such_campaign'",
        ),
        ("GET", EXPLAIN, {"user_id": "u-1", "at": "yesterday"}, None, 400, None),
        ("GET", EXPLAIN, {"user_id": "u-1", "at": "2026-11-22T10:00:00"}, None, 400, "at: no time zone"),
        ("GET", EXPLAIN, {"user_id": "u-1", "at": "0001-01-01T00:00:00Z"}, None, 400, None),
        (
            "POST",
            f"/v1/campaigns/{CAMPAIGN}/pause",
            {},
            [1],
            400,
            "the request body must be a JSON object or empty",
        ),
        ("POST", f"/v1/campaigns/{CAMPAIGN}/pause", {}, {"reason": 7}, 400, "reason: expected a string"),
        (
            "POST",
            f"/v1/campaigns/{CAMPAIGN}/pause",
            {},
            {"reason": " "},
            400,
            "reason: expected 1 to 500 characters",
        ),
        (
            "POST",
            f"/v1/campaigns/{CAMPAIGN}/pause",
            {},
            {"reason": "x" * 501},
            400,
            "reason: expected 1 to 500 characters",
        ),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(api, method, path, query, body, status, message):
    response = api.request(method, path, body, query=query)
    assert response.status == status, response.body
    if message is not None:
        assert response.body["message"] == message
    elif path == REPORT:
        assert response.body["message"].split(":")[0] in ("from", "to")
    else:
        assert response.body["message"].split(":")[0] == "at"
    # Nothing a bad request did is left behind: the campaign is still active and listed.
    assert campaign_entry(api)["status"] == "active"


@pytest.mark.parametrize("name", ["x" * 2000, "\u00e9" * 600, "Thank_Top_Users", "%00"])
def test_a_path_that_cannot_name_a_campaign_is_a_404_not_a_store_error(api, name):
    # DynamoDB refuses a sort key over 1024 bytes: such a name must not reach the store.
    for method, path, query in [
        ("GET", f"/v1/campaigns/{name}/sends", {}),
        ("GET", f"/v1/campaigns/{name}/explain", {"user_id": "u-1"}),
        ("POST", f"/v1/campaigns/{name}/pause", {}),
        ("POST", f"/v1/campaigns/{name}/resume", {}),
    ]:
        response = api.request(method, path, query=query)
        assert response.status == 404, (method, path, response.body)
        assert response.body["message"].startswith("no campaign named")


def test_a_pause_body_that_is_not_json_is_a_400(api):
    response = api.post(f"/v1/campaigns/{CAMPAIGN}/pause", raw_body=b"not json")
    assert response.status == 400
    assert response.body["message"].startswith("the request body is not valid JSON")


def test_wrong_methods_are_405(api):
    response = api.get(f"/v1/campaigns/{CAMPAIGN}/pause")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert api.post("/v1/campaigns").status == 405


def test_a_deleted_users_sends_stay_counted_and_listed_without_naming_anyone(api):
    (user_id,) = outside_holdout("u-gone", 1)
    enter(api, user_id, first_name="Ana")
    assert api.post("/v1/users/delete", {"external_ids": [user_id]}).status == 201
    (send,) = api.get(f"/v1/campaigns/{CAMPAIGN}/sends").body["sends"]
    assert (send["user"], send["status"]) == (None, "dismissed")
    assert campaign_entry(api)["counts"]["dismissed"] == 1
    assert api.get(f"/v1/campaigns/{CAMPAIGN}/sends", user_id=user_id).status == 404
