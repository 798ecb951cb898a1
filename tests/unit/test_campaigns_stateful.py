"""Campaign sends as a state machine (issue 8, item 6): hypothesis plays random sequences of entries
and exits of a VIP segment, token registrations, removals and tokens found gone, sweeps, sender
drains, duplicate messages, crashes (tests/faults.py), pauses and resumes, and clock moves across
quiet hours, re-eligibility periods and caps, on the in-memory store and a recording push service.

After every step:
- at most one publish per (send_id, token);
- a push goes only to a user in the audience at its instant, outside the user's quiet hours, of an
  active campaign, never to a user in the campaign's holdout, and never past the user's cap;
- re-eligibility holds: no two `sent`/`held_out` triggers of one campaign for one user closer than
  `reeligible after` (ever, without one);
- every entry into the audience has exactly one trigger record per `send on entry` campaign, and
  every trigger record one entry;
and at the end, with time moving on through sweeps and drains, every queued or held send ends.
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from dsl import compile_sources
from kudos.campaigns.rules import holdout_position
from kudos.campaigns.sender import deliver
from kudos.core.identity import UserKey
from kudos.core.records import SendRecord, UserRecords
from kudos.core.settings import Settings
from kudos.core.timeutil import SECONDS_PER_DAY, parse_instant
from kudos.ingest.push import register_token
from kudos.ingest.track import track_users
from kudos.segments.membership import reevaluate
from kudos.segments.sweep import run_sweep
from kudos.store.memory import MemoryStore, RecordingPush
from kudos.store.ports import PushMessage, PushRefused, QueuedSend
from tests.faults import FAULT_KINDS, Calls, Died, Failed, Fault

SETTINGS = Settings()
START = parse_instant("2026-11-22T12:00:00Z")
REELIGIBLE = 2 * SECONDS_PER_DAY
CAP, CAP_PERIOD = 2, SECONDS_PER_DAY
QUIET = (22 * 60, 8 * 60)  # local minutes of the day: [22:00, 08:00)
HOLDOUT = {"thank_vips": 0.45, "daily_vips": 0.2}
RULES = compile_sources(
    [
        (
            "rules.seg",
            """
segment vips "VIPs" { attr.vip = true }
campaign thank_vips "Thanks" {
    audience vips
    send on entry
    reeligible after 2 days
    holdout 45%
    quiet hours 22:00 to 08:00
    cap 2 per 1 days
    expire after 24 hours
    push { title "Thanks, {{ first_name | default: 'friend' }}" body "b" }
}
campaign daily_vips "Daily" {
    audience vips
    send daily at 18:00 UTC
    holdout 20%
    quiet hours 22:00 to 08:00
    cap 2 per 1 days
    expire after 24 hours
    push { title "Today" body "b" }
}
""",
        )
    ]
)
ON_ENTRY = ["thank_vips"]
# u-1 falls in both campaigns' holdouts; u-0 and u-2 in neither.
ZONES = {"u-0": None, "u-1": "America/Los_Angeles", "u-2": "Asia/Tokyo"}
USERS = sorted(ZONES)
STEPS = [60, 5 * 60, 3600, 7 * 3600, SECONDS_PER_DAY, 3 * SECONDS_PER_DAY]

# For a third of the operations no fault; otherwise one at one of the first calls of the operation,
# or at its first or second call of a kind that writes (striking only if it makes that call).
WRITES = [
    "push.publish",
    "users.save",
    "memberships.record_change",
    "send_queue.enqueue",
    "campaigns.save_state",
]
faults = st.one_of(
    st.just(None),
    st.builds(Fault, st.integers(0, 24), st.sampled_from(FAULT_KINDS)),
    st.builds(Fault, st.integers(0, 1), st.sampled_from(FAULT_KINDS), st.sampled_from(WRITES)),
)


class CheckedPush(RecordingPush):
    """Checks each push as it goes out (what the store holds at that instant), then records it."""

    def __init__(self, machine: CampaignMachine) -> None:
        super().__init__()
        self.machine = machine

    def publish(self, endpoint: str, platform: str, message: PushMessage) -> Any:
        if endpoint.rpartition("/")[2] not in self.gone:
            self.machine.check_push(endpoint, message)
        return super().publish(endpoint, platform, message)


def local_minute(zone: str | None, at: float) -> int:
    local = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(zone or "UTC"))
    return local.hour * 60 + local.minute


def quiet(zone: str | None, at: float) -> bool:
    minute = local_minute(zone, at)
    return minute >= QUIET[0] or minute < QUIET[1]


class CampaignMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.push = CheckedPush(self)
        self.calls = Calls(self.store, self.push)
        self.now = START
        self.token_of: dict[str, str] = {}  # token -> user id
        self.generation: Counter[str] = Counter()
        self.vip = dict.fromkeys(USERS, False)  # what the last ingest call for the user said
        self.sent_messages: list[QueuedSend] = []  # every message ever queued, for duplicates
        self.problems: list[str] = []

    # --- plumbing -----------------------------------------------------------------------------

    def clock(self) -> float:
        return self.now

    def peek(self, user: str) -> UserRecords:
        """The user's records as stored, read without going through the (counted) ports."""
        key = UserKey.of_user(user)
        records = UserRecords(key)
        for record in self.store.users.partitions.get(key, {}).values():
            records.add(copy.deepcopy(record))
        return records

    def sends(self) -> list[tuple[str, SendRecord]]:
        return [
            (key.user_id or "", record)
            for key, records in self.store.users.partitions.items()
            for record in records.values()
            if isinstance(record, SendRecord)
        ]

    def faulty(self, fault: Fault | None, operation: Any) -> bool:
        """Run ``operation`` with ``fault`` armed; whether it failed."""
        self.calls.reset(fault)
        try:
            operation()
        except (Died, Failed):
            return True
        finally:
            self.calls.disarm()
        return False

    def track(self, user: str, **attributes: Any) -> None:
        body = {"attributes": [{"external_id": user, **attributes}]}
        track_users(self.store, RULES, SETTINGS, self.now, body)

    def reevaluate(self, user: UserRecords, at: float) -> None:
        reevaluate(self.store, RULES, user, at, "ingest")

    def deliver(self, message: QueuedSend) -> None:
        deliver(self.store, self.push, RULES, message, self.clock, self.reevaluate)

    def take(self) -> list[QueuedSend]:
        taken, self.store.send_queue.messages = self.store.send_queue.messages, []
        messages = [message for message, _ in taken]
        self.sent_messages += messages
        return messages

    def check_push(self, endpoint: str, message: PushMessage) -> None:
        user = self.token_of[endpoint.rpartition("/")[2]]
        records = self.peek(user)
        profile = records.to_profile()
        campaign = message.campaign_id
        where = f"push of {campaign} to {user} at {self.now - START:.0f} s"
        if not RULES.evaluate("vips", profile, self.now):
            self.problems.append(f"{where}: not in the audience")
        if quiet(ZONES[user], self.now):
            self.problems.append(f"{where}: in quiet hours")
        state = self.store.campaigns.state_of.get(campaign)
        if state is not None and state.status != "active":
            self.problems.append(f"{where}: campaign {state.status}")
        if holdout_position(campaign, UserKey.of_user(user)) < HOLDOUT[campaign]:
            self.problems.append(f"{where}: in the holdout")
        if any(send.status == "held_out" for send in records.sends_of(campaign)):
            self.problems.append(f"{where}: held out before")
        recent = {
            send.send_id
            for send in records.sends.values()
            if send.status == "sent" and send.sent_at is not None and self.now - CAP_PERIOD < send.sent_at
        }
        if len(recent | {message.send_id}) > CAP:
            self.problems.append(f"{where}: past the cap ({len(recent)} sent in the period)")

    # --- rules --------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        run_sweep(self.store, RULES, self.now, self.clock)
        for user, zone in ZONES.items():
            self.track(user, first_name=user, **({"time_zone": zone} if zone else {}))
            self.token(user, "new")

    @rule(user=st.sampled_from(USERS), times=st.integers(1, 3), fault=faults, retry=st.booleans())
    def toggle_vip(self, user: str, times: int, fault: Fault | None, retry: bool) -> None:
        """Ingest calls that each make the user enter the audience or leave it (a flapping attribute);
        the first may fail, and the client may retry it. Calls are a second apart (a trigger's id is
        made of its instant, to the millisecond)."""
        for _ in range(times):
            self.vip[user] = vip = not self.vip[user]
            self.now += 1
            if self.faulty(fault, lambda vip=vip: self.track(user, vip=vip)) and retry:
                self.now += 1
                self.track(user, vip=vip)
            fault = None

    # Mostly what lets pushes through: a run that disables everything early finds little.
    @rule(user=st.sampled_from(USERS), change=st.sampled_from(["new", "new", "new", "disabled", "gone"]))
    def token(self, user: str, change: str) -> None:
        """The device registers a new token, or disables its token, or the push service will reject
        the current token as unregistered."""
        if change == "gone":
            self.push.gone.add(f"tok-{user}-{self.generation[user]}")
            return
        self.now += 1
        if change == "new":
            self.generation[user] += 1
        token = f"tok-{user}-{self.generation[user]}"
        self.token_of[token] = user
        body = {
            "user_id": user,
            "device_id": f"d-{user}",
            "platform": "ios",
            "token": token,
            "enabled": change == "new",
        }
        register_token(self.store, RULES, self.now, body)

    @rule(step=st.sampled_from(STEPS))
    def wait(self, step: int) -> None:
        self.now += step

    @rule(fault=faults)
    def sweep(self, fault: Fault | None) -> None:
        self.faulty(fault, lambda: run_sweep(self.store, RULES, self.now, self.clock))

    @rule(fault=faults, lose=st.booleans(), outage=st.sampled_from([False, False, False, True]))
    def drain(self, fault: Fault | None, lose: bool, outage: bool) -> None:
        """The sender takes every message; one that fails is redelivered, or (``lose``) lost. During
        an ``outage`` the push service refuses every publish."""
        failed = []
        self.push.failing = outage
        self.calls.reset(fault)
        try:
            for message in self.take():
                try:
                    self.deliver(message)
                except (Died, Failed, PushRefused):
                    failed.append(message)
        finally:
            self.calls.disarm()
            self.push.failing = False
        if not lose:
            self.store.send_queue.enqueue(failed)

    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        """SQS delivers an old message again."""
        if self.sent_messages:
            self.deliver(data.draw(st.sampled_from(self.sent_messages)))

    @rule(campaign=st.sampled_from(sorted(HOLDOUT)), status=st.sampled_from(["active", "active", "paused"]))
    def pause_or_resume(self, campaign: str, status: Literal["active", "paused"]) -> None:
        state = self.store.campaigns.state(campaign)
        if state is not None and state.status != status:
            self.store.campaigns.save_state(replace(state, status=status, since=self.now))

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def pushes_were_allowed(self) -> None:
        assert self.problems == []

    @invariant()
    def at_most_one_publish_per_send_and_token(self) -> None:
        published = Counter((message.send_id, endpoint) for endpoint, message in self.push.published)
        assert [pair for pair, times in published.items() if times > 1] == []

    @invariant()
    def reeligibility_is_kept(self) -> None:
        counted: dict[tuple[str, str], list[float]] = {}
        for user, send in self.sends():
            if send.status in ("sent", "held_out"):
                counted.setdefault((user, send.campaign), []).append(send.triggered_at)
        for (user, campaign), instants in counted.items():
            instants.sort()
            gaps = [later - earlier for earlier, later in itertools.pairwise(instants)]
            assert all(gap >= REELIGIBLE for gap in gaps), f"{campaign} for {user}: {gaps}"

    @invariant()
    def each_entry_has_one_trigger_and_each_trigger_one_entry(self) -> None:
        entries = Counter(
            (change.user.user_id, campaign, change.at)
            for changes in self.store.memberships.log.values()
            for change in changes
            if change.segment == "vips" and change.change == "entered"
            for campaign in ON_ENTRY
        )
        triggers = Counter(
            (user, send.campaign, send.triggered_at) for user, send in self.sends() if send.trigger == "entry"
        )
        assert entries == triggers

    def teardown(self) -> None:
        """Time goes on, with a sweep and a drain every 5 hours: every send queued or held by then
        ends (the daily campaign's later triggers may still wait)."""
        waiting = {send.send_id for _, send in self.sends() if send.pending}
        for _ in range(2 * 24 // 5):
            self.now += 5 * 3600
            run_sweep(self.store, RULES, self.now, self.clock)
            for message in self.take():
                self.deliver(message)
        assert [(user, send) for user, send in self.sends() if send.send_id in waiting and send.pending] == []
        assert self.problems == []


CampaignMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_campaign_sends_keep_their_invariants = CampaignMachine.TestCase


def test_one_user_falls_in_both_holdouts_and_the_others_in_neither() -> None:
    held = {
        (campaign, user)
        for campaign, fraction in HOLDOUT.items()
        for user in USERS
        if holdout_position(campaign, UserKey.of_user(user)) < fraction
    }
    assert held == {("thank_vips", "u-1"), ("daily_vips", "u-1")}
