"""Campaign results on the in-memory store: deliveries, direct and influenced opens, conversions and
opt-outs land on the send they belong to, whatever the order and however often events arrive, and
the guardrail pauses a campaign that loses too many users."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kudos.core.records import SendRecord
from kudos.core.timeutil import format_instant
from kudos.ingest.push import record_push_events
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from tests.campaign_world import RULES, SETTINGS, World, rules

CAMPAIGN = RULES.replace(
    "holdout 0%",
    'holdout 0%\n    conversion event "claimed_reward" within 3 days\n'
    "    guardrail opt_outs above 20% after 4 sends",
)


@pytest.fixture
def world() -> World:
    return World(rules(CAMPAIGN))


def sent_to(world: World, user_id: str) -> SendRecord:
    world.token(user_id, device_id=f"d-{user_id}", token=f"tok-{user_id}")
    world.track(user_id, vip=True)
    (send,) = [send for send in world.drain() if send is not None]
    assert send.status == "sent"
    return send


def push_events(world: World, *events: dict[str, Any]) -> None:
    body = {"events": [{"time": format_instant(world.now), **event} for event in events]}
    record_push_events(world.store, world.segments, SETTINGS, world.now, body)


def session(world: World, user_id: str, started: float) -> None:
    body = {
        "sessions": [
            {
                "session_id": f"s-{user_id}-{started}",
                "device_id": f"d-{user_id}",
                "user_id": user_id,
                "started_at": format_instant(started),
            }
        ]
    }
    result = ingest_sessions(world.store, world.segments, SETTINGS, world.now, body)
    assert not result.errors, result.errors


def stored(world: World, user_id: str) -> SendRecord:
    (send,) = world.sends(user_id)
    return send


def test_a_direct_open_by_send_id_counts_once_and_implies_delivery(world: World) -> None:
    send = sent_to(world, "u-1")
    world.now += 60
    opened = {"type": "opened", "user_id": "u-1", "campaign_id": "thank_vips", "send_id": send.send_id}
    push_events(world, opened, opened)
    result = stored(world, "u-1")
    assert result.opened_at == world.now
    assert result.direct_open
    assert result.delivered_at == world.now


def test_an_open_naming_only_the_campaign_goes_to_the_latest_send(world: World) -> None:
    sent_to(world, "u-2")
    world.now += 60
    push_events(world, {"type": "opened", "user_id": "u-2", "campaign_id": "thank_vips"})
    assert stored(world, "u-2").direct_open


def test_a_session_soon_after_the_send_is_an_influenced_open_until_a_direct_one_arrives(world: World) -> None:
    send = sent_to(world, "u-3")
    assert send.influence_until == send.sent_at + 30 * 60  # no session history: 30 minutes
    world.now += 600
    session(world, "u-3", world.now)
    result = stored(world, "u-3")
    assert result.opened_at == world.now
    assert not result.direct_open
    world.now += 60
    push_events(
        world, {"type": "opened", "user_id": "u-3", "campaign_id": "thank_vips", "send_id": send.send_id}
    )
    result = stored(world, "u-3")
    assert result.direct_open
    assert result.opened_at == world.now


def test_a_session_after_the_window_is_no_open(world: World) -> None:
    sent_to(world, "u-4")
    world.now += 3600
    session(world, "u-4", world.now)
    assert stored(world, "u-4").opened_at is None


def test_the_conversion_event_within_its_window_converts_the_send(world: World) -> None:
    send = sent_to(world, "u-5")
    world.now += 3600
    event = {"external_id": "u-5", "name": "claimed_reward", "time": format_instant(world.now)}
    track_users(world.store, world.segments, SETTINGS, world.now, {"events": [event]})
    assert stored(world, "u-5").converted_at == world.now
    assert send.converted_at is None


def test_an_opt_out_is_attributed_to_the_latest_send_within_a_day(world: World) -> None:
    sent_to(world, "u-6")
    world.now += 3600
    push_events(world, {"type": "opted_out", "user_id": "u-6"})
    assert stored(world, "u-6").opted_out_at == world.now


def test_too_many_opt_outs_pause_the_campaign_and_announce_it(world: World) -> None:
    for n in range(4):
        sent_to(world, f"v-{n}")
    world.now += 60
    push_events(world, {"type": "opted_out", "user_id": "v-0"})
    state = world.store.campaigns.state("thank_vips")
    assert state is not None
    assert state.status == "paused_by_guardrail"
    assert state.reason is not None
    assert "1 of 4" in state.reason
    assert [paused.name for paused in world.store.events.paused] == ["thank_vips"]
    world.token("v-9", device_id="d-v-9", token="tok-v-9")
    world.track("v-9", vip=True)
    assert [send.status for send in world.sends("v-9")] == ["paused"]


def replayed(arrival: list[int]) -> tuple[tuple[Any, ...], float]:
    """One user sent the campaign, then five things arriving in ``arrival`` order: a delivery, two
    sessions in the influence window (the later one first), a campaign-only open, the conversion."""
    world = World(rules(CAMPAIGN))
    send = sent_to(world, "u-7")
    base = world.now
    conversion = {"external_id": "u-7", "name": "claimed_reward", "time": format_instant(base + 1000)}
    steps = [
        lambda: push_events(
            world,
            {
                "type": "delivered",
                "user_id": "u-7",
                "campaign_id": "thank_vips",
                "send_id": send.send_id,
                "time": format_instant(base + 5),
            },
        ),
        lambda: session(world, "u-7", base + 300),
        lambda: session(world, "u-7", base + 200),
        lambda: push_events(
            world,
            {
                "type": "opened",
                "user_id": "u-7",
                "campaign_id": "thank_vips",
                "time": format_instant(base + 900),
            },
        ),
        lambda: track_users(world.store, world.segments, SETTINGS, world.now, {"events": [conversion]}),
    ]
    world.now = base + 2000
    for index in arrival:
        steps[index]()
    result = stored(world, "u-7")
    return (result.delivered_at, result.opened_at, result.direct_open, result.converted_at), base


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(5)), repeats=st.lists(st.integers(0, 4), max_size=3))
def test_results_do_not_depend_on_the_order_or_repetition_of_what_arrives(
    order: list[int], repeats: list[int]
) -> None:
    in_order, base = replayed(list(range(5)))
    assert in_order == (base + 5, base + 900, True, base + 1000)
    shuffled, _ = replayed([*order, *repeats])
    assert shuffled == in_order


def test_a_token_found_gone_counts_against_the_earlier_send_not_the_one_that_found_it() -> None:
    world = World(rules(CAMPAIGN.replace("holdout 0%", "holdout 0%\n    reeligible after 1 hour")))
    first = sent_to(world, "u-8")
    world.track("u-8", vip=False)
    world.now += 7200
    world.push.gone.add("tok-u-8")
    world.track("u-8", vip=True)
    (found_it,) = [send for send in world.drain() if send is not None]
    assert found_it.status == "unreachable"  # its only token is gone
    sends = {send.send_id: send for send in world.sends("u-8")}
    assert sends[first.send_id].opted_out_at == world.now
    assert sends[found_it.send_id].opted_out_at is None


def test_an_event_naming_a_send_the_user_does_not_hold_changes_no_send(world: World) -> None:
    send = sent_to(world, "u-9")
    world.now += 60
    # The sender records a send before it publishes, so a device cannot open a push whose send is not
    # recorded yet; an event naming another send id (another profile's, a made-up one) is kept in the
    # push event log and counts for nothing in the campaign's results.
    push_events(
        world, {"type": "opened", "user_id": "u-9", "campaign_id": "thank_vips", "send_id": "not-a-send"}
    )
    assert stored(world, "u-9") == send
