"""Campaigns end to end on the in-memory store: an entry into the audience becomes one queued send,
the sender publishes it once, and each rule of campaigns.md stops what it should."""

from __future__ import annotations

from typing import Any

import pytest

from kudos.campaigns import queries
from kudos.campaigns.rules import holdout_position
from kudos.campaigns.sender import deliver
from kudos.campaigns.triggers import REQUEUE_AFTER_SECONDS
from kudos.core.identity import UserKey
from kudos.core.records import UserRecords
from kudos.core.timeutil import SECONDS_PER_DAY, parse_instant
from kudos.ingest.push import register_token
from kudos.ingest.track import track_users
from kudos.ingest.users import delete_users, identify_users
from kudos.segments.sweep import run_sweep
from kudos.store.ports import MembershipChange, PushMessage, PushRefused, QueuedSend
from tests.campaign_world import NOW, RULES, SETTINGS, World, rules
from tests.faults import Calls


@pytest.fixture
def world() -> World:
    return World(rules())


def test_an_entry_becomes_one_push_with_the_ids_in_its_payload(world: World) -> None:
    world.token("u-1")
    world.track("u-1", first_name="Ada", vip=True)
    (send,) = world.sends("u-1")
    assert send.status == "queued"
    assert send.trigger == "entry"
    (done,) = world.drain()
    assert done is not None
    assert done.status == "sent"
    assert done.reason is None
    ((endpoint, message),) = world.push.published
    assert endpoint == "endpoint/ios/tok-1"
    assert (message.campaign_id, message.send_id) == ("thank_vips", send.send_id)
    assert (message.title, message.body, message.deep_link) == (
        "Thank you, Ada!",
        "500 coins",
        "myapp://rewards",
    )
    # A redelivered message publishes nothing more.
    world.store.send_queue.enqueue([QueuedSend(UserKey.of_user("u-1"), send.send_id, NOW)])
    (again,) = world.drain()
    assert again is not None
    assert again.status == "sent"
    assert len(world.push.published) == 1


def test_a_user_without_a_token_is_unreachable_at_the_trigger(world: World) -> None:
    world.track("u-2", vip=True)
    (send,) = world.sends("u-2")
    assert send.status == "unreachable"
    assert world.store.send_queue.take() == []


def test_a_user_who_left_the_audience_before_the_send_is_dismissed(world: World) -> None:
    world.token("u-3")
    world.track("u-3", vip=True)
    world.track("u-3", vip=False)
    (done,) = world.drain()
    assert done is not None
    assert done.status == "dismissed"
    assert world.push.published == []


def test_entering_again_is_not_eligible_by_default(world: World) -> None:
    world.token("u-4")
    world.track("u-4", vip=True)
    world.drain()
    world.track("u-4", vip=False)
    world.now += 60
    world.track("u-4", vip=True)
    statuses = sorted(send.status for send in world.sends("u-4"))
    assert statuses == ["not_eligible", "sent"]


def test_quiet_hours_hold_a_send_until_the_sweep_after_the_window(world: World) -> None:
    segments = rules(RULES.replace("holdout 0%", "holdout 0%\n    quiet hours 22:00 to 08:00"))
    world = World(segments)
    world.now = parse_instant("2026-11-22T23:00:00Z")
    world.token("u-5")
    world.track("u-5", vip=True, time_zone="Europe/Paris")  # 00:00 in Paris: quiet
    (held,) = world.drain()
    assert held is not None
    assert held.status == "held"
    assert held.pending_at == parse_instant("2026-11-23T07:00:00Z")  # 08:00 in Paris
    world.now = parse_instant("2026-11-23T06:00:00Z")
    run_sweep(world.store, segments, world.now, world.clock)
    assert world.store.send_queue.take() == []  # still quiet
    world.now = parse_instant("2026-11-23T07:15:00Z")
    run_sweep(world.store, segments, world.now, world.clock)
    (sent,) = world.drain()
    assert sent is not None
    assert sent.status == "sent"


def test_a_lost_message_is_queued_again_by_the_sweep(world: World) -> None:
    world.token("u-6")
    world.track("u-6", vip=True)
    world.store.send_queue.take()  # the message is lost
    world.now += REQUEUE_AFTER_SECONDS + 1
    run_sweep(world.store, world.segments, world.now, world.clock)
    (sent,) = world.drain()
    assert sent is not None
    assert sent.status == "sent"
    assert len(world.push.published) == 1


def test_a_new_campaign_triggers_every_current_member_on_its_first_sweep() -> None:
    plain = rules(RULES[: RULES.index("campaign")])
    world = World(plain)
    world.token("u-7")
    world.track("u-7", vip=True)
    world.now += SECONDS_PER_DAY
    world.segments = rules()
    run_sweep(world.store, world.segments, world.now, world.clock)
    (send,) = world.sends("u-7")
    assert send.trigger == "initial"
    assert send.status == "queued"
    run_sweep(world.store, world.segments, world.now + 900, world.clock)  # only once
    assert len(world.sends("u-7")) == 1


def test_a_template_that_fails_to_render_fails_the_send_with_its_reason(world: World) -> None:
    segments = rules(
        RULES.replace("{{ attr.coins | default: 500 }} coins", "{{ attr.coins | divided_by: 0 }}")
    )
    world = World(segments)
    world.token("u-8")
    world.track("u-8", vip=True, coins=5)
    (failed,) = world.drain()
    assert failed is not None
    assert failed.status == "failed"
    assert failed.reason is not None
    assert failed.reason.startswith("template does not render")
    assert world.push.published == []


def test_a_send_queued_for_a_device_is_made_to_the_user_it_was_identified_as(world: World) -> None:
    body = {"device_id": "d-9", "platform": "android", "token": "tok-9", "enabled": True}
    register_token(world.store, world.segments, world.now, body)
    track_users(
        world.store, world.segments, SETTINGS, world.now, {"attributes": [{"device_id": "d-9", "vip": True}]}
    )
    identify = {"aliases_to_identify": [{"device_id": "d-9", "external_id": "u-9"}]}
    identify_users(world.store, world.segments, world.now, identify)
    (sent,) = world.drain()
    assert sent is not None
    assert sent.status == "sent"
    # Identify makes u-9 enter too: that trigger is recorded, but the queued one stands for it.
    outcomes = {send.send_id: send.status for send in world.sends("u-9")}
    assert sorted(outcomes.values()) == ["not_eligible", "sent"]
    assert outcomes[sent.send_id] == "sent"
    assert len(world.push.published) == 1
    assert world.store.users.load_user(UserKey.of_device("d-9")).sends == {}


def test_a_user_held_out_as_a_device_stays_held_out_once_identified() -> None:
    world = World(rules(RULES.replace("holdout 0%", "holdout 50%")))
    held = None
    for n in range(40):  # find a device the hash holds out
        device = f"d-h{n}"
        body = {"device_id": device, "platform": "ios", "token": f"tok-h{n}", "enabled": True}
        register_token(world.store, world.segments, world.now, body)
        attributes = {"attributes": [{"device_id": device, "vip": True}]}
        track_users(world.store, world.segments, SETTINGS, world.now, attributes)
        sends = world.store.users.load_user(UserKey.of_device(device)).sends
        if any(send.status == "held_out" for send in sends.values()):
            held = device
            break
    assert held is not None
    identify_users(
        world.store,
        world.segments,
        world.now,
        {"aliases_to_identify": [{"device_id": held, "external_id": "u-h"}]},
    )
    world.track("u-h", vip=False)
    world.now += 400 * SECONDS_PER_DAY
    world.track("u-h", vip=True)
    statuses = sorted(send.status for send in world.sends("u-h"))
    assert "sent" not in statuses
    assert "queued" not in statuses


def test_deleting_a_user_dismisses_its_queued_send_and_keeps_the_figures(world: World) -> None:
    world.token("u-10")
    world.track("u-10", vip=True, first_name="Grace")
    delete_users(world.store, world.now, {"external_ids": ["u-10"]})
    assert world.drain() == [None]  # the message finds nothing to send
    assert world.push.published == []
    ((user, kept),) = world.store.campaigns.sends("thank_vips", limit=10)
    assert user is None
    assert (kept.status, kept.reason, kept.title) == ("dismissed", "the user was deleted", None)


class ProcessDied(BaseException):
    """The process died (no handler of the code under test runs)."""


def test_a_sender_that_dies_making_an_endpoint_leaves_the_send_queued(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.token("u-9")
    world.track("u-9", vip=True)
    (message,) = world.store.send_queue.take()

    def dies(platform: str, token: str) -> str:
        raise ProcessDied

    with monkeypatch.context() as patched:
        patched.setattr(world.push, "endpoint", dies)
        with pytest.raises(ProcessDied):
            deliver(world.store, world.push, world.segments, message, world.clock, world.reevaluate)
    (send,) = world.sends("u-9")
    assert send.status == "queued"  # not `sent`, unconfirmed, with nothing pushed
    world.store.send_queue.enqueue([message])  # SQS redelivers it
    (sent,) = world.drain()
    assert sent is not None
    assert (sent.status, sent.reason) == ("sent", None)
    assert len(world.push.published) == 1


def test_a_publish_whose_answer_is_lost_is_never_published_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.token("u-10")
    world.track("u-10", vip=True)
    (message,) = world.store.send_queue.take()
    publish = world.push.publish

    def times_out(endpoint: str, platform: str, push: PushMessage) -> str:
        publish(endpoint, platform, push)  # it went out; the answer did not come back
        raise TimeoutError("read timeout")

    with monkeypatch.context() as patched:
        patched.setattr(world.push, "publish", times_out)
        with pytest.raises(TimeoutError):
            deliver(world.store, world.push, world.segments, message, world.clock, world.reevaluate)
    world.store.send_queue.enqueue([message])  # SQS redelivers it
    world.drain()
    (send,) = world.sends("u-10")
    assert (send.status, send.reason) == ("sent", "unconfirmed")
    assert len(world.push.published) == 1


def test_a_refused_publish_is_given_back_and_sent_on_redelivery(world: World) -> None:
    world.token("u-11")
    world.track("u-11", vip=True)
    (message,) = world.store.send_queue.take()
    world.push.failing = True
    with pytest.raises(PushRefused):
        deliver(world.store, world.push, world.segments, message, world.clock, world.reevaluate)
    (send,) = world.sends("u-11")
    assert send.status == "queued"
    world.push.failing = False
    world.store.send_queue.enqueue([message])
    (sent,) = world.drain()
    assert sent is not None
    assert (sent.status, sent.reason) == ("sent", None)
    assert len(world.push.published) == 1


def test_a_redelivery_re_evaluates_a_user_the_crashed_sender_did_not() -> None:
    segments = rules(RULES + 'segment thanked "Thanked" { received("thank_vips") }\n')
    world = World(segments)
    world.token("u-12")
    world.track("u-12", vip=True)
    (message,) = world.store.send_queue.take()

    def dies(user: UserRecords, at: float) -> None:
        raise ProcessDied  # after the send was recorded, before the user was re-evaluated

    with pytest.raises(ProcessDied):
        deliver(world.store, world.push, world.segments, message, world.clock, dies)
    assert "thanked" not in world.store.users.load_user(UserKey.of_user("u-12")).memberships
    world.store.send_queue.enqueue([message])  # SQS redelivers it
    world.drain()
    assert "thanked" in world.store.users.load_user(UserKey.of_user("u-12")).memberships
    assert len(world.push.published) == 1


DAILY = """
segment vips "VIPs" { attr.vip = true }
segment control "Control" { in_control("daily_vips") }
campaign daily_vips "Daily" {
    audience vips
    send daily at 18:00 UTC
    holdout 50%
    push { title "t" body "b" }
}
"""


def crashed_daily_sweep(monkeypatch: pytest.MonkeyPatch) -> tuple[World, str]:
    """A daily sweep that held a member out and died as it recorded their entry into `control`."""
    world = World(rules(DAILY))
    user = next(
        f"u-{n}" for n in range(100) if holdout_position("daily_vips", UserKey.of_user(f"u-{n}")) < 0.5
    )
    world.token(user)
    world.track(user, vip=True)
    world.now = parse_instant("2026-11-22T18:05:00Z")
    record_change = world.store.memberships.record_change

    def dies(change: MembershipChange, *args: Any, **kwargs: Any) -> bool:
        if change.segment == "control":
            raise ProcessDied
        return record_change(change, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(world.store.memberships, "record_change", dies)
        with pytest.raises(ProcessDied):
            run_sweep(world.store, world.segments, world.now, world.clock)
    return world, user


def test_a_sweep_re_run_after_a_crash_re_evaluates_the_users_it_held_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, user = crashed_daily_sweep(monkeypatch)
    run_sweep(world.store, world.segments, world.now, world.clock)  # the scheduler's retry
    (send,) = world.sends(user)
    assert send.status == "held_out"
    assert "control" in world.store.users.load_user(UserKey.of_user(user)).memberships


def test_a_paused_daily_campaign_records_a_paused_trigger_per_member_without_reading_them() -> None:
    world = World(rules(DAILY))
    members = [f"u-{n}" for n in range(5)]
    for user in members:
        world.track(user, vip=True)
    queries.pause_campaign(world.store, world.segments, world.now, "daily_vips", {"reason": "too eager"})
    calls = Calls(world.store, world.push)
    world.now = parse_instant("2026-11-22T18:05:00Z")

    run_sweep(world.store, world.segments, world.now, world.clock)

    assert "users.load_user" not in calls.log
    for user in members:
        (send,) = world.sends(user)
        assert (send.status, send.reason) == ("paused", "paused by hand: too eager")
    assert world.store.send_queue.take() == []


def test_a_paused_campaign_re_fired_after_a_crash_still_re_evaluates_whom_it_held_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sweep held a member out, died before re-evaluating them, and the campaign was paused
    # before the scheduler's retry: the trigger already there decides, not the pause.
    world, user = crashed_daily_sweep(monkeypatch)
    queries.pause_campaign(world.store, world.segments, world.now, "daily_vips", {})
    run_sweep(world.store, world.segments, world.now, world.clock)

    (send,) = world.sends(user)
    assert send.status == "held_out"
    assert "control" in world.store.users.load_user(UserKey.of_user(user)).memberships
