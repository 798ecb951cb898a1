"""Campaign sends under crashes (campaigns.md "At most once"; issue 8, item 6).

A fault strikes one call (to a storage port, the send queue or the push service) of one of the three
paths that make and take triggers, in turn at every call and of every kind (tests/faults.py: the
process dies before it, it fails before taking effect, or it takes effect and its answer is lost):

- the trigger path: an ingest call whose entry fires a trigger (entry, transaction, enqueue);
- the sweep's firing: a new `send on entry` campaign's first triggers, and a `send daily at` instant
  (state saves, member pages, trigger saves, enqueue);
- the sender: load, state read, claim, endpoint, publish, token save, final save, re-evaluation.

Then what would retry does (the client retries its ingest call, the scheduler re-runs the sweep, SQS
redelivers the message until it is taken), followed by later sweeps and drains. Compared with the same
steps run without a fault:
- at most one publish per (send_id, token);
- no trigger lost or doubled: each ends with one final outcome, the one the clean run gives, except
  `sent` with reason `unconfirmed` when the fault struck after a publish of the send may have happened
  and before the send recorded it;
- a `sent` send that is not `unconfirmed` reached every token the clean run's did.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from dsl import SegmentSet, compile_sources
from kudos.campaigns.rules import holdout_position
from kudos.campaigns.sender import deliver
from kudos.campaigns.triggers import REQUEUE_AFTER_SECONDS
from kudos.core.identity import UserKey
from kudos.core.records import UNCONFIRMED, SendRecord, UserRecords
from kudos.core.settings import Settings
from kudos.core.timeutil import parse_instant
from kudos.ingest.push import register_token
from kudos.ingest.track import track_users
from kudos.segments.membership import reevaluate
from kudos.segments.sweep import run_sweep
from kudos.store.memory import MemoryStore, RecordingPush
from kudos.store.ports import QueuedSend
from tests.faults import FAULT_KINDS, Calls, Died, Failed, Fault

SETTINGS = Settings()
START = parse_instant("2026-11-22T12:00:00Z")
# The last two read messaging history: the sender's and the sweep's re-evaluations write their entries.
SEGMENT = """
segment vips "VIPs" { attr.vip = true }
segment thanked "Thanked" { received("thank_vips") or received("daily_vips") }
segment control "Control" { in_control("daily_vips") or in_control("welcome_vips") }
"""
PUSH = 'push { title "Thanks, {{ first_name | default: \'friend\' }}" body "{{ attr.coins | default: 5 }} coins" }'
ON_ENTRY = f"""
campaign thank_vips "Thanks" {{
    audience vips
    send on entry
    reeligible after 1 day
    {PUSH}
}}
"""
# A second `send on entry` campaign of the same audience, with a holdout (u-1 and u-2 fall in it).
WELCOME = f"""
campaign welcome_vips "Welcome" {{
    audience vips
    send on entry
    holdout 50%
    {PUSH}
}}
"""
# As ON_ENTRY, with quiet hours (u-2 lives in Los Angeles: quiet at noon UTC).
QUIET = ON_ENTRY.replace("reeligible after 1 day", "reeligible after 1 day\n    quiet hours 22:00 to 08:00")
DAILY = f"""
campaign daily_vips "Daily" {{
    audience vips
    send daily at 18:00 UTC
    holdout 50%
    {PUSH}
}}
"""
# u-1: two devices, one token already gone; u-2: one token; u-3: none (unreachable); u-4: one token.
TOKENS = {"u-1": [("d-1a", "tok-1a"), ("d-1b", "tok-1b"), ("d-1c", "tok-gone")], "u-2": [("d-2", "tok-2")]}
TOKENS["u-4"] = [("d-4", "tok-4")]
USERS = ["u-1", "u-2", "u-3", "u-4"]
MAX_REDELIVERIES = 5

Outcomes = dict[tuple[str, str, str], list[str]]  # (user, campaign, trigger kind) -> statuses


@functools.cache
def rules(*campaigns: str) -> SegmentSet:
    return compile_sources([("rules.seg", SEGMENT + "".join(campaigns))])


class World:
    def __init__(self, segments: SegmentSet, now: float = START) -> None:
        self.store = MemoryStore()
        self.push = RecordingPush()
        self.push.gone.add("tok-gone")
        self.segments = segments
        self.now = now
        self.calls = Calls(self.store, self.push)
        # send id -> (status, reason) as the fault struck: before the call, and after it (lost)
        self.before_fault: dict[str, tuple[str, str | None]] = {}
        self.after_fault: dict[str, tuple[str, str | None]] = {}
        self.published_at_fault: Counter[str] = Counter()
        self.calls.on_fault = self._snapshot

    def _snapshot(self, before: bool) -> None:
        statuses = {
            record.send_id: (record.status, record.reason)
            for records in self.store.users.partitions.values()
            for record in records.values()
            if isinstance(record, SendRecord)
        }
        if before:
            self.before_fault = self.after_fault = statuses
        else:
            self.after_fault = statuses
        self.published_at_fault = Counter(message.send_id for _, message in self.push.published)

    def clock(self) -> float:
        return self.now

    def sweep(self) -> None:
        run_sweep(self.store, self.segments, self.now, self.clock)

    def track(self, users: list[str], **attributes: Any) -> None:
        body = {"attributes": [{"external_id": user, **attributes} for user in users]}
        track_users(self.store, self.segments, SETTINGS, self.now, body)

    def tokens(self) -> None:
        for user, devices in TOKENS.items():
            for device, token in devices:
                body = {
                    "user_id": user,
                    "device_id": device,
                    "platform": "ios",
                    "token": token,
                    "enabled": True,
                }
                register_token(self.store, self.segments, self.now, body)

    def reevaluate(self, user: UserRecords, at: float) -> None:
        reevaluate(self.store, self.segments, user, at, "ingest")

    def deliver(self, message: QueuedSend) -> None:
        deliver(self.store, self.push, self.segments, message, self.clock, self.reevaluate)

    def drain(self) -> None:
        """Take every queued message; one that fails is redelivered (SQS, after its visibility timeout)."""
        for _ in range(10):
            messages = self.store.send_queue.take()
            if not messages:
                return
            for message in messages:
                for _ in range(MAX_REDELIVERIES):
                    try:
                        self.deliver(message)
                        break
                    except (Died, Failed):
                        continue

    def sends(self) -> list[tuple[UserKey, SendRecord]]:
        return [
            (user, record)
            for user, records in self.store.users.partitions.items()
            for record in records.values()
            if isinstance(record, SendRecord)
        ]

    def memberships(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for user in self.store.users.scan_users():
            for segment in user.memberships:
                found.setdefault(segment, []).append(user.key.token)
        return {segment: sorted(users) for segment, users in found.items()}

    def outcomes(self) -> Outcomes:
        found: Outcomes = {}
        for user, send in self.sends():
            found.setdefault((user.token, send.campaign, send.trigger), []).append(send.status)
        return {key: sorted(statuses) for key, statuses in found.items()}

    def keys(self) -> dict[str, tuple[str, str, str, int]]:
        """send id -> (user, campaign, trigger kind, its rank among those by trigger instant): the
        same in two runs whose triggers' instants (and so their ids) differ."""
        ranked = sorted(
            self.sends(), key=lambda pair: (pair[0].token, pair[1].campaign, pair[1].triggered_at)
        )
        found: dict[str, tuple[str, str, str, int]] = {}
        counts: Counter[tuple[str, str, str]] = Counter()
        for user, send in ranked:
            kind = (user.token, send.campaign, send.trigger)
            found[send.send_id] = (*kind, counts[kind])
            counts[kind] += 1
        return found

    def reached(self) -> dict[tuple[str, str, str, int], set[str]]:
        """(user, campaign, trigger kind, rank) -> the endpoints its pushes were published to."""
        key_of = self.keys()
        found: dict[tuple[str, str, str, int], set[str]] = {}
        for endpoint, message in self.push.published:
            found.setdefault(key_of[message.send_id], set()).add(endpoint)
        return found


@dataclass(frozen=True)
class Scenario:
    """How to build the world, the operation a fault strikes, and what its caller does on failure."""

    name: str
    prepare: Callable[[], tuple[World, Any]]
    operation: Callable[[World, Any], None]
    retry: Callable[[World, Any], None]


def _entry_world() -> tuple[World, Any]:
    world = World(rules(ON_ENTRY, WELCOME))
    world.sweep()
    world.tokens()
    world.track(USERS, first_name="Ada", vip=False)
    world.now += 60
    return world, None


def _ingest(world: World, _: Any) -> None:
    world.track(USERS, vip=True)


def _ingest_retry(world: World, _: Any) -> None:
    world.now += 1  # the client's retry: a new receive time
    world.track(USERS, vip=True)


def _initial_world() -> tuple[World, Any]:
    world = World(rules())
    world.sweep()
    world.tokens()
    world.track(USERS, vip=True)
    world.now += 900
    world.segments = rules(ON_ENTRY, WELCOME)  # deployed now: its first sweep triggers every current member
    return world, None


def _daily_world() -> tuple[World, Any]:
    world = World(rules(DAILY))
    world.sweep()
    world.tokens()
    world.track(USERS, vip=True)
    world.now = parse_instant("2026-11-22T18:05:00Z")
    return world, None


def _requeue_world() -> tuple[World, Any]:
    world = World(rules(QUIET))
    world.sweep()
    world.tokens()
    world.track(USERS, vip=False)
    world.track(["u-2"], time_zone="America/Los_Angeles")
    world.now += 60
    world.track(USERS, vip=True)
    world.drain()  # u-2's send is held until 08:00 in Los Angeles
    world.now += 60
    world.track(["u-4"], vip=False)
    world.track(["u-4"], vip=True)  # not eligible: sent a minute ago
    world.track(["u-1"], vip=False)
    world.now += 86_400
    world.track(["u-1"], vip=True)  # eligible again; its message is lost
    world.store.send_queue.take()
    world.now = parse_instant("2026-11-23T16:05:00Z")
    return world, None


def _sweep(world: World, _: Any) -> None:
    world.sweep()


def _sender_world() -> tuple[World, Any]:
    world, _ = _entry_world()
    world.track(["u-1"], vip=True)
    (message,) = world.store.send_queue.take()
    world.now += 5
    return world, message


def _send(world: World, message: Any) -> None:
    world.deliver(message)


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario("ingest", _entry_world, _ingest, _ingest_retry),
        Scenario("initial-sweep", _initial_world, _sweep, _sweep),
        Scenario("daily-sweep", _daily_world, _sweep, _sweep),
        Scenario("requeue-sweep", _requeue_world, _sweep, _sweep),
        Scenario("sender", _sender_world, _send, _send),
    )
}


def play(scenario: Scenario, fault: Fault | None) -> World:
    world, argument = scenario.prepare()
    world.calls.reset(fault)
    try:
        scenario.operation(world, argument)
    except (Died, Failed):
        world.calls.disarm()
        for _ in range(MAX_REDELIVERIES):
            try:
                scenario.retry(world, argument)
                break
            except (Died, Failed):  # pragma: no cover - the fault strikes once
                continue
    world.calls.disarm()
    world.drain()
    # Later sweeps queue again what is still pending (a message lost with the crash), and drains.
    for _ in range(2):
        world.now += REQUEUE_AFTER_SECONDS + 1
        world.sweep()
        world.drain()
    return world


def clean(name: str) -> tuple[World, list[str]]:
    scenario = SCENARIOS[name]
    world, argument = scenario.prepare()
    world.calls.reset()
    scenario.operation(world, argument)
    calls = world.calls.log
    return play(scenario, None), calls


CLEAN = {name: clean(name) for name in SCENARIOS}


def test_the_clean_runs_have_sends_to_crash_in() -> None:
    entry, _ = CLEAN["ingest"]
    assert entry.outcomes() == {
        ("u:u-1", "thank_vips", "entry"): ["sent"],
        ("u:u-2", "thank_vips", "entry"): ["sent"],
        ("u:u-3", "thank_vips", "entry"): ["unreachable"],
        ("u:u-4", "thank_vips", "entry"): ["sent"],
        ("u:u-1", "welcome_vips", "entry"): ["held_out"],
        ("u:u-2", "welcome_vips", "entry"): ["held_out"],
        ("u:u-3", "welcome_vips", "entry"): ["unreachable"],
        ("u:u-4", "welcome_vips", "entry"): ["sent"],
    }
    assert entry.reached()[("u:u-1", "thank_vips", "entry", 0)] == {
        "endpoint/ios/tok-1a",
        "endpoint/ios/tok-1b",
    }
    daily, _ = CLEAN["daily-sweep"]
    statuses = {status for found in daily.outcomes().values() for status in found}
    assert {"sent", "held_out", "unreachable"} <= statuses
    assert any(holdout_position("daily_vips", UserKey.of_user(user)) < 0.5 for user in USERS)
    assert set(daily.memberships()) == {"vips", "thanked", "control"}
    assert set(entry.memberships()) == {"vips", "thanked", "control"}
    requeue, calls = CLEAN["requeue-sweep"]
    assert requeue.outcomes()[("u:u-1", "thank_vips", "entry")] == ["sent", "sent"]
    assert calls.count("users.save") == 2  # u-1's lost message and u-2's quiet hours, queued again
    initial, _ = CLEAN["initial-sweep"]
    assert {kind for (_, _, kind) in initial.outcomes()} == {"initial"}
    for name, (_, calls) in CLEAN.items():
        assert "push.publish" in calls or name != "sender"
        assert "send_queue.enqueue" in calls or name == "sender"


# Calls that change nothing: an answer lost is the same as a call failed.
READS = {
    "pointers.resolve_anonymous",
    "users.load_user",
    "users.scan_users",
    "campaigns.state",
    "campaigns.states",
    "campaigns.pending",
    "memberships.members",
    "memberships.due_users",
    "memberships.unpublished",
    "figures.last_sweep",
}
CASES = [
    pytest.param(name, kind, at, id=f"{name}-{kind}-{at:02}-{call}")
    for name, (_, calls) in CLEAN.items()
    for kind in FAULT_KINDS
    for at, call in enumerate(calls)
    if not (kind == "lost" and call in READS)
]


@pytest.mark.parametrize(("name", "kind", "at"), CASES)
def test_a_fault_at_any_call_neither_publishes_twice_nor_loses_a_trigger(
    name: str, kind: str, at: int
) -> None:
    expected, _ = CLEAN[name]
    world = play(SCENARIOS[name], Fault(at, kind))  # type: ignore[arg-type]
    assert world.calls.struck is not None

    published = Counter((message.send_id, endpoint) for endpoint, message in world.push.published)
    assert [pair for pair, times in published.items() if times > 1] == [], "published twice"

    assert not [send for _, send in world.sends() if send.pending], "a send is still pending"
    assert world.outcomes() == expected.outcomes()
    assert world.memberships() == expected.memberships()
    reached, clean_reached, key_of = world.reached(), expected.reached(), world.keys()
    for _, send in world.sends():
        key = key_of[send.send_id]
        if send.status != "sent":
            assert key not in reached, f"{send.status} yet published"
        elif send.reason == UNCONFIRMED:
            # Only where a publish may have happened unrecorded: the send was claimed when the fault
            # struck, and it struck the publish, came after one, or struck the claim itself (its
            # answer lost: as if the sender died between its claim and its publish, which no
            # sender can tell from dying just after the publish).
            claimed = ("sent", UNCONFIRMED)
            assert world.after_fault.get(send.send_id) == claimed, "unconfirmed, never claimed"
            assert (
                world.calls.struck == "push.publish"
                or world.published_at_fault[send.send_id] > 0
                or world.before_fault.get(send.send_id) != claimed
            ), f"left unconfirmed by a fault at {world.calls.struck}, before any publish"
        else:
            assert reached.get(key) == clean_reached.get(key)
