"""The campaign views (kudos/campaigns/queries.py) on the in-memory store: the list and its counts,
paging, explain agreeing with what the trigger path and the sender then do, pause and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dsl import SegmentSet, compile_sources
from kudos.campaigns import queries
from kudos.campaigns.rules import holdout_position
from kudos.campaigns.sender import deliver
from kudos.campaigns.triggers import new_trigger
from kudos.core.errors import BadRequest, NotFound
from kudos.core.identity import UserKey
from kudos.core.records import SendRecord, UserRecords
from kudos.core.settings import Settings
from kudos.core.timeutil import format_instant, parse_instant
from kudos.ingest.push import register_token
from kudos.ingest.track import track_users
from kudos.ingest.updates import ConcurrentUpdateError
from kudos.segments.membership import reevaluate
from kudos.segments.sweep import run_sweep
from kudos.store.memory import MemoryStore, RecordingPush
from kudos.store.ports import CampaignState, QueuedSend

NOW = parse_instant("2026-11-22T12:00:00Z")
SETTINGS = Settings()

RULES = """
segment vips "VIPs" { attr.vip = true }
campaign thank_vips "Thanks" {
    audience vips
    send on entry
    holdout 50%
    quiet hours 22:00 to 08:00
    cap 1 per 1 day
    push {
        title "Thank you, {{ first_name | default: 'friend' }}!"
        body "{% if attr.div %}{{ 100 | divided_by: attr.div }}{% else %}100{% endif %} coins"
    }
}
campaign daily_vips {
    audience vips
    send daily at 18:00 UTC
    push {
        title "Daily"
        body "Hello"
    }
}
campaign once_vips "Once" {
    audience vips
    send once at 2026-12-01T18:00:00Z
    push {
        title "Once"
        body "Hello"
    }
}
"""


def rules(text: str = RULES) -> SegmentSet:
    return compile_sources([("rules/vips.seg", text)])


def in_holdout(held: bool, prefix: str = "u", fraction: float = 0.5) -> str:
    """A user id that the `thank_vips` holdout holds out (or leaves in)."""
    return next(
        user_id
        for user_id in (f"{prefix}-{n}" for n in range(1000))
        if (holdout_position("thank_vips", UserKey.of_user(user_id)) < fraction) == held
    )


class World:
    def __init__(self, segments: SegmentSet | None = None) -> None:
        self.store = MemoryStore()
        self.push = RecordingPush()
        self.segments = segments or rules()
        self.now = NOW
        run_sweep(self.store, self.segments, self.now, self.clock)

    def clock(self) -> float:
        return self.now

    def track(self, user_id: str, **attributes: Any) -> None:
        body = {"attributes": [{"external_id": user_id, **attributes}]}
        track_users(self.store, self.segments, SETTINGS, self.now, body)

    def token(self, user_id: str) -> None:
        body = {"user_id": user_id, "device_id": f"d-{user_id}", "platform": "ios", "token": f"t-{user_id}"}
        register_token(self.store, self.segments, self.now, {**body, "enabled": True})

    def drain(self) -> list[SendRecord | None]:
        return [
            deliver(self.store, self.push, self.segments, message, self.clock, self.reevaluate)
            for message in self.store.send_queue.take()
        ]

    def reevaluate(self, user: UserRecords, at: float) -> None:
        reevaluate(self.store, self.segments, user, at, "ingest")

    def user(self, user_id: str) -> UserRecords:
        return self.store.users.load_user(UserKey.of_user(user_id))

    def explain(self, user_id: str, at: float | None = None) -> dict[str, Any]:
        return queries.explain_campaign(
            self.store,
            self.segments,
            self.now,
            "thank_vips",
            user_id,
            None,
            None if at is None else _text(at),
        )


def _text(at: float) -> str:
    return format_instant(at)


@pytest.fixture
def world() -> World:
    return World()


# --- list ---------------------------------------------------------------------------------------------


def test_the_list_writes_each_trigger_as_in_the_file_and_counts_every_status(world: World) -> None:
    reachable = in_holdout(False)
    world.token(reachable)
    world.track(reachable, vip=True)
    world.track(in_holdout(True), vip=True)  # no token: unreachable comes before the holdout
    listing = queries.list_campaigns(world.store, world.segments, Path("rules"))["campaigns"]
    assert [(c["name"], c["trigger"], c["source"]) for c in listing] == [
        ("thank_vips", "send on entry", "rules/vips.seg"),
        ("daily_vips", "send daily at 18:00 UTC", "rules/vips.seg"),
        ("once_vips", "send once at 2026-12-01T18:00:00Z", "rules/vips.seg"),
    ]
    thanks = listing[0]
    assert thanks["counts"] == dict.fromkeys(queries.SEND_STATUSES, 0) | {"queued": 1, "unreachable": 1}
    assert listing[1]["title"] is None
    # The first sweep recorded every campaign's state: active since it was found.
    assert (thanks["status"], thanks["since"], thanks["reason"]) == ("active", "2026-11-22T12:00:00Z", None)


def test_a_campaign_in_state_but_not_in_the_files_is_listed_paused_removed_with_its_counts(
    world: World,
) -> None:
    user = in_holdout(False)
    world.token(user)
    world.track(user, vip=True)
    world.drain()
    world.segments = rules(RULES[: RULES.index("campaign daily_vips")])
    listing = queries.list_campaigns(world.store, world.segments, Path("rules"))["campaigns"]
    names = [campaign["name"] for campaign in listing]
    assert names == ["thank_vips", "daily_vips", "once_vips"]
    removed = listing[1]
    assert removed == {
        "name": "daily_vips",
        "title": None,
        "audience": None,
        "trigger": None,
        "status": "paused",
        "since": None,
        "reason": "removed",
        "source": None,
        "counts": dict.fromkeys(queries.SEND_STATUSES, 0),
    }
    # Its history stays readable, and explain says it is stopped because it was removed.
    explained = queries.explain_campaign(
        world.store, world.segments, world.now, "daily_vips", user, None, None
    )
    assert explained["would_send"] is False
    assert explained["stop"]["reason"] == "the campaign was removed from the rule files"
    assert [rule["rule"] for rule in explained["rules"]] == ["paused"]
    assert explained["push"] is None
    with pytest.raises(NotFound, match="no longer in the rule files"):
        queries.pause_campaign(world.store, world.segments, world.now, "daily_vips", None)


# --- sends --------------------------------------------------------------------------------------------


def _stored_sends(world: World, users: int, per_user: int) -> list[tuple[str, str]]:
    """users x per_user sends of thank_vips written directly, many sharing an instant (ties)."""
    made = []
    for u in range(users):
        key = UserKey.of_user(f"p-{u}")
        world.track(f"p-{u}", plan="x")  # a user, not in the audience: no trigger of its own
        for n in range(per_user):
            send = SendRecord(f"{u:02d}{n:02d}", "thank_vips", "entry", NOW + 60 * (n % 3), "queued")
            assert world.store.users.save(key, send)
            made.append((f"p-{u}", send.send_id))
    return made


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 1000])
def test_paging_lists_every_send_once_newest_first_whatever_the_page_size(world: World, limit: int) -> None:
    made = _stored_sends(world, users=3, per_user=4)
    seen: list[dict[str, Any]] = []
    token = None
    while True:
        page = queries.campaign_sends(
            world.store, world.segments, "thank_vips", None, None, str(limit), token
        )
        assert len(page["sends"]) <= limit
        seen += page["sends"]
        token = page["next"]
        if token is None:
            break
    assert sorted((s["user"]["user_id"], s["send_id"]) for s in seen) == sorted(made)
    order = [(s["triggered_at"], s["send_id"]) for s in seen]
    assert order == sorted(order, reverse=True)

    # One user's sends, paged the same way.
    mine, token = [], None
    while True:
        page = queries.campaign_sends(
            world.store, world.segments, "thank_vips", "p-1", None, str(limit), token
        )
        mine += [s["send_id"] for s in page["sends"]]
        token = page["next"]
        if token is None:
            break
    assert sorted(mine) == sorted(send_id for user, send_id in made if user == "p-1")


def test_a_page_token_is_checked_before_it_is_used(world: World) -> None:
    _stored_sends(world, users=1, per_user=3)
    first = queries.campaign_sends(world.store, world.segments, "thank_vips", None, None, "1", None)
    # A token of the campaign-wide listing cannot page one user's, and the reverse.
    with pytest.raises(BadRequest, match=r"^next: the token belongs to another user_id or device_id$"):
        queries.campaign_sends(world.store, world.segments, "thank_vips", "p-0", None, "1", first["next"])
    for bad in ("", "=", "e30=", "bnVsbA==", "eyJhdCI6IDEsICJpZCI6IG51bGx9"):  # "", {}, null, id null
        with pytest.raises(BadRequest, match=r"^next: "):
            queries.campaign_sends(world.store, world.segments, "thank_vips", None, None, "1", bad or "!")


# --- explain ------------------------------------------------------------------------------------------


def _ready(world: World, user_id: str, **attributes: Any) -> None:
    """A reachable VIP, whose entry trigger is then taken out of the way (the scenario adds its own)."""
    world.token(user_id)
    world.track(user_id, vip=True, **attributes)
    world.store.send_queue.take()
    for send in world.user(user_id).sends.values():
        world.store.users.delete_record(UserKey.of_user(user_id), send.key)


SCENARIOS = {
    "sends": lambda w, u: None,
    "paused": lambda w, u: queries.pause_campaign(w.store, w.segments, w.now, "thank_vips", None),
    "not_eligible": lambda w, u: w.store.users.save(
        UserKey.of_user(u), SendRecord("old", "thank_vips", "entry", NOW - 3600, "sent", sent_at=NOW - 3600)
    ),
    "unreachable": lambda w, u: w.track(u, push_subscribe="unsubscribed"),
    "dismissed": lambda w, u: w.track(u, vip=False),
    "capped": lambda w, u: w.store.users.save(
        UserKey.of_user(u), SendRecord("other", "daily_vips", "scheduled", NOW - 60, "sent", sent_at=NOW - 60)
    ),
    "quiet_hours": lambda w, u: w.track(u, time_zone="Pacific/Auckland"),  # 01:00 there
    "render": lambda w, u: w.track(u, div=0),
}


@pytest.mark.parametrize("scenario", [*SCENARIOS, "held_out"])
def test_explain_agrees_with_what_a_trigger_then_becomes(world: World, scenario: str) -> None:
    user_id = in_holdout(scenario == "held_out", prefix=f"x-{scenario}")
    _ready(world, user_id)
    SCENARIOS.get(scenario, lambda w, u: None)(world, user_id)
    explained = world.explain(user_id)
    stopping = [rule for rule in explained["rules"] if rule["stops"]]
    if scenario == "sends":
        assert explained["would_send"] is True
        assert explained["stop"] is None
        assert stopping == []
        assert explained["push"] == {
            "title": "Thank you, friend!",
            "body": "100 coins",
            "deep_link": None,
            "image": None,
        }
    else:
        assert explained["would_send"] is False
        assert explained["stop"]["rule"] == scenario
        assert explained["stop"] == stopping[0]
    # Now the same trigger for real, taken by the sender at the same instant.
    campaign = world.segments.campaigns["thank_vips"]
    user = world.user(user_id)
    send = new_trigger(
        campaign, world.store.campaigns.state("thank_vips"), user, "entry", world.now, world.now
    )
    assert world.store.users.save(user.key, send)
    if send.status == "queued":
        world.store.send_queue.enqueue([QueuedSend(user.key, send.send_id, world.now)])
        (send,) = world.drain()  # type: ignore[assignment]
    assert send is not None
    expected = "sent" if explained["would_send"] else explained["stop"]["status"]
    assert send.status == expected
    assert send.reason == (None if expected == "sent" else explained["stop"]["reason"])
    # And the history shows it.
    after = world.explain(user_id)
    assert after["history"][0]["send_id"] == send.send_id


def test_explain_shows_what_each_rule_saw(world: World) -> None:
    user_id = in_holdout(False, prefix="seen")
    _ready(world, user_id, time_zone="Pacific/Auckland", div=0)
    world.store.users.save(
        UserKey.of_user(user_id),
        SendRecord("old", "thank_vips", "entry", NOW - 3600, "sent", sent_at=NOW - 3600),
    )
    rules = {rule["rule"]: rule for rule in world.explain(user_id)["rules"]}
    assert rules["not_eligible"]["seen"] == "2026-11-22T11:00:00Z"  # the last trigger that counts
    assert rules["capped"]["seen"] == 1
    assert (rules["quiet_hours"]["seen"], rules["quiet_hours"]["until"]) == ("01:00", "2026-11-22T19:00:00Z")
    assert rules["render"]["reason"] == "template does not render: divided_by: can't divide by 0"
    assert rules["paused"]["stops"] is False


def test_explain_needs_exactly_one_user_and_a_known_one(world: World) -> None:
    for user_id, device_id in ((None, None), ("a", "b")):
        with pytest.raises(BadRequest, match=r"^user_id: give exactly one of user_id and device_id$"):
            queries.explain_campaign(world.store, world.segments, NOW, "thank_vips", user_id, device_id, None)
    with pytest.raises(NotFound, match=r'^no user with user_id "nobody"$'):
        queries.explain_campaign(world.store, world.segments, NOW, "thank_vips", "nobody", None, None)
    with pytest.raises(NotFound, match=r"^no campaign named 'nope'$"):
        queries.explain_campaign(world.store, world.segments, NOW, "nope", "nobody", None, None)


# --- pause and resume ---------------------------------------------------------------------------------


def test_pause_makes_the_queued_send_end_paused_when_the_sender_takes_it(world: World) -> None:
    user_id = in_holdout(False)
    world.token(user_id)
    world.track(user_id, vip=True)
    paused = queries.pause_campaign(world.store, world.segments, NOW + 1, "thank_vips", {"reason": "oops"})
    assert (paused["status"], paused["reason"], paused["changed"]) == ("paused", "oops", True)
    (taken,) = world.drain()
    assert taken is not None
    assert (taken.status, taken.reason) == ("paused", "paused by hand: oops")
    assert world.push.published == []


def test_pause_and_resume_are_idempotent_and_resume_clears_a_guardrail_pause(world: World) -> None:
    store, segments = world.store, world.segments
    first = queries.pause_campaign(store, segments, NOW + 10, "thank_vips", None)
    again = queries.pause_campaign(store, segments, NOW + 20, "thank_vips", {"reason": "later"})
    assert (first["changed"], again["changed"]) == (True, False)
    assert again["since"] == first["since"] == "2026-11-22T12:00:10Z"
    assert again["reason"] is None
    state = store.campaigns.state("thank_vips")
    assert state is not None
    store.campaigns.save_state(
        CampaignState(**{**_fields(state), "status": "paused_by_guardrail", "reason": "3%"})
    )
    resumed = queries.resume_campaign(store, segments, NOW + 30, "thank_vips")
    assert (resumed["status"], resumed["reason"], resumed["since"], resumed["changed"]) == (
        "active",
        None,
        "2026-11-22T12:00:30Z",
        True,
    )
    assert queries.resume_campaign(store, segments, NOW + 40, "thank_vips")["changed"] is False
    # The guardrail counts sends and opt-outs again from the resume.
    resumed_state = store.campaigns.state("thank_vips")
    assert resumed_state is not None
    assert resumed_state.resumed_at == NOW + 30
    # What the sweep keeps in the state is kept through pause and resume.
    after = store.campaigns.state("thank_vips")
    assert after is not None
    assert (after.first_seen, after.initial_at, after.initial_done) == (
        state.first_seen,
        state.initial_at,
        state.initial_done,
    )


def _fields(state: CampaignState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in state.__dataclass_fields__}


def test_a_campaign_no_sweep_found_yet_gets_its_state_from_a_pause(world: World) -> None:
    # A new campaign, deployed after the last sweep (12:00), paused at 12:30 before the next one.
    world.segments = rules(
        RULES.replace("campaign once_vips", "campaign new_vips") + RULES[RULES.index("campaign once_vips") :]
    )
    assert queries.resume_campaign(world.store, world.segments, NOW + 1800, "new_vips") == {
        "campaign": "new_vips",
        "status": "active",
        "since": None,
        "reason": None,
        "changed": False,
    }
    assert world.store.campaigns.state("new_vips") is None
    queries.pause_campaign(world.store, world.segments, NOW + 1800, "new_vips", None)
    state = world.store.campaigns.state("new_vips")
    assert state is not None
    assert (state.status, state.first_seen, state.since) == ("paused", NOW, NOW + 1800)


def test_a_state_that_keeps_changing_is_a_concurrent_update_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves = []

    def lose(state: CampaignState) -> bool:
        saves.append(state)
        return False

    monkeypatch.setattr(world.store.campaigns, "save_state", lose)
    with pytest.raises(ConcurrentUpdateError):
        queries.pause_campaign(world.store, world.segments, NOW, "thank_vips", None)
    assert len(saves) == 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the request body must be a JSON object or empty"),
        ("paused", "the request body must be a JSON object or empty"),
        ({"reason": 1}, "reason: expected a string"),
        ({"reason": ""}, "reason: expected 1 to 500 characters"),
        ({"reason": "x" * 501}, "reason: expected 1 to 500 characters"),
    ],
)
def test_a_bad_pause_body_is_refused_and_changes_nothing(world: World, body: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=f"^{message}$"):
        queries.pause_campaign(world.store, world.segments, NOW, "thank_vips", body)
    state = world.store.campaigns.state("thank_vips")
    assert state is not None
    assert state.status == "active"


# --- found while writing explain -------------------------------------------------------------------


def test_a_once_per_user_campaign_sends_once_even_when_the_user_re_enters_before_the_send() -> None:
    """Two queued triggers of one campaign were both sent; a trigger still queued now makes the next
    one not eligible, and explain says so while it waits."""
    world = World(rules(RULES.replace("    holdout 50%\n", "").replace("    cap 1 per 1 day\n", "")))
    user_id = "u-twice"
    world.token(user_id)
    for vip in (True, False, True):
        world.track(user_id, vip=vip)
        world.now += 1
    waiting = world.explain(user_id)
    assert (waiting["stop"]["rule"], waiting["stop"]["reason"]) == (
        "not_eligible",
        "a trigger of this campaign is still queued",
    )
    world.drain()
    assert len(world.push.published) == 1
    (first, second) = sorted(world.user(user_id).sends.values(), key=lambda send: send.triggered_at)
    assert (first.status, second.status) == ("sent", "not_eligible")
    assert second.reason == "a trigger of this campaign is still queued"
