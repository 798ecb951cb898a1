"""One suite for every implementation of the storage ports: the in-memory fake, moto and DynamoDB
Local. What the domain relies on (versioned writes, first-writer-wins sessions, conditional pointer
deletes, copies in and out) holds in all three, so the fake the unit tests use cannot drift."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from kudos.core.identity import UserKey
from kudos.core.profile import AttributeInstant
from kudos.core.records import (
    ACTIVITY,
    ATTRIBUTES,
    ActivityRecord,
    AttributesRecord,
    CampaignRecord,
    DeviceAttributesRecord,
    DueRecord,
    EventRecord,
    PurchasesRecord,
    SendRecord,
    SendStatus,
    TokenRecord,
    event_key,
)
from kudos.store.dynamo import Store
from kudos.store.memory import MemoryStore
from kudos.store.ports import (
    CampaignState,
    DayFigures,
    FullSweepPlan,
    MembershipChange,
    StoredSession,
    SweepRun,
)
from tests.conftest import fresh_tables

ANA = UserKey.of_user("ana")
DEVICE = UserKey.of_device("d-1")
# A label with the characters its token escapes, and a name with a colon (the name needs none).
ALIAS = UserKey.of_alias("crm:id%", "c-1:x")
EXPIRES = 2_000_000_000


@pytest.fixture(params=["memory", "moto", pytest.param("ddblocal", marks=pytest.mark.ddblocal)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    for dynamodb in fresh_tables(request, request.param):
        # A bus is configured, so that changes wait in the outbox until marked delivered.
        yield Store(
            dynamodb.settings.model_copy(update={"event_bus_name": "kudos-test-bus"}), dynamodb.client
        )


def activity(aid: str = "aid-1") -> ActivityRecord:
    return ActivityRecord(aid=aid, created_at=100.0, sessions_total=2, session_days={20_000: 2})


def test_a_new_record_is_written_once_and_a_stale_version_loses(store: Any) -> None:
    first = activity()
    assert store.users.save(ANA, first)
    assert first.version == 1
    assert not store.users.save(ANA, activity("someone-else"))  # version 0 again: it exists now
    stale = replace(first, version=0)
    assert not store.users.save(ANA, stale)
    first.sessions_total = 3
    assert store.users.save(ANA, first)
    assert store.users.get_records([(ANA, ACTIVITY)])[(ANA, ACTIVITY)].sessions_total == 3


def test_records_come_back_as_copies_and_only_where_stored(store: Any) -> None:
    store.users.save(ANA, activity())
    found = store.users.get_records([(ANA, ACTIVITY), (ANA, ATTRIBUTES), (DEVICE, ACTIVITY)])
    assert list(found) == [(ANA, ACTIVITY)]
    found[(ANA, ACTIVITY)].sessions_total = 99
    assert store.users.get_records([(ANA, ACTIVITY)])[(ANA, ACTIVITY)].sessions_total == 2


def test_every_record_kind_round_trips_through_load_user(store: Any) -> None:
    records = [
        activity(),
        AttributesRecord(
            standard={"country": "FR"},
            custom={"plan": "gold", "visits": 3, "vip": True, "seen": AttributeInstant(5.5), "tags": ["a"]},
            push_subscription="opted_in",
            standard_set_at=7.0,
            standard_times={"country": 7.0},
        ),
        DeviceAttributesRecord(
            values={"platform": "ios", "app_version": "5.2.0"},
            reported_at={"platform": 8.0, "app_version": 8.5},
        ),
        EventRecord(name="claimed", total=2, first=1.0, last=2.0, by_day={20_000: 2}),
        PurchasesRecord(
            total=1,
            spent_total=9.5,
            first=3.0,
            last=3.0,
            count_by_day={20_001: 1},
            spent_by_day={20_001: 9.5},
        ),
        TokenRecord(device_id="d-1", platform="ios", token="tok", enabled=True, updated_at=4.0),
        CampaignRecord(campaign_id="thanks", received=True, last_received=6.0),
        CampaignRecord(
            campaign_id="promo",
            received=True,
            opened=True,
            last_opened=6.5,
            open_days={20_001: 1},
            receive_days={20_000: 1},
            counted=["r@6.0", "o@6.0", "os-9"],
        ),
    ]
    for record in records:
        assert store.users.save(ANA, record)
    loaded = store.users.load_user(ANA)
    by_key = {record.key: record for record in loaded.records()}
    assert by_key == {record.key: record for record in records}
    assert loaded.exists


def test_replace_user_is_all_or_nothing(store: Any) -> None:
    target = activity("target")
    store.users.save(ANA, target)
    store.users.save(DEVICE, activity("anonymous"))
    store.users.save(DEVICE, EventRecord(name="e", total=1))
    stale = replace(target, version=0)
    assert not store.users.replace_user(ANA, [stale], [(DEVICE, ACTIVITY)])
    assert store.users.load_user(DEVICE).exists  # nothing was deleted
    merged = replace(target, sessions_total=4)
    assert store.users.replace_user(ANA, [merged], [(DEVICE, ACTIVITY), (DEVICE, event_key("e"))])
    assert merged.version == 2
    assert not store.users.load_user(DEVICE).records()
    assert store.users.load_user(ANA).activity.sessions_total == 4


def test_delete_user_returns_what_it_deleted(store: Any) -> None:
    store.users.save(ANA, activity())
    store.users.save(ANA, TokenRecord(device_id="d-9", platform="android", token="t", enabled=True))
    store.pointers.put_alias(DEVICE, ANA)
    store.pointers.put_alias(ALIAS, ANA)
    deleted = store.users.delete_user(ANA)
    assert set(deleted.tokens) == {"d-9"}
    assert set(deleted.merged_devices) == {"d-1"}
    assert deleted.merged_anonymous == [DEVICE, ALIAS]
    assert not store.users.load_user(ANA).records()
    assert not store.users.delete_user(ANA).records()


def test_scan_yields_each_existing_user_once_with_all_records(store: Any) -> None:
    users = [UserKey.of_user(f"u-{n}") for n in range(7)]
    for n, user in enumerate(users):
        store.users.save(user, activity(f"aid-{n}"))
        store.users.save(user, EventRecord(name="e", total=n + 1))
    store.users.save(DEVICE, AttributesRecord(standard={"country": "FR"}))  # no activity: not a user yet
    store.pointers.put_alias(UserKey.of_device("d-2"), users[0])
    store.pointers.put_alias(ALIAS, users[0])
    store.users.save(ALIAS, activity("aid-alias"))  # an alias-only profile is a user too
    store.users.save(ALIAS, EventRecord(name="e", total=len(users) + 1))
    users.append(ALIAS)
    store.pointers.claim_device("d-3", users[1])
    whole = {u.key: u for u in store.users.scan_users()}
    assert set(whole) == set(users)
    assert all(whole[user].events["e"].total == n + 1 for n, user in enumerate(users))
    parts = [u.key for part in range(3) for u in store.users.scan_users(part, 3)]
    assert sorted(parts, key=lambda k: k.token) == sorted(users, key=lambda k: k.token)


def test_aliases_and_token_owners(store: Any) -> None:
    store.pointers.put_alias(DEVICE, ANA)
    store.pointers.put_alias(ALIAS, ANA)
    other_alias = UserKey.of_alias("crm", "c-2")
    found = store.pointers.resolve_anonymous([DEVICE, UserKey.of_device("d-2"), ALIAS, other_alias])
    assert found == {DEVICE: ANA, ALIAS: ANA}
    assert "d-1" in store.users.load_user(ANA).merged_devices
    assert store.users.load_user(ANA).merged_anonymous == [DEVICE, ALIAS]
    for anonymous in (DEVICE, ALIAS):
        assert not store.pointers.delete_alias(anonymous, only_to=UserKey.of_user("bob"))
        assert store.pointers.delete_alias(anonymous, only_to=ANA)
        assert not store.pointers.delete_alias(anonymous)
    assert store.pointers.resolve_anonymous([DEVICE, ALIAS]) == {}

    assert store.pointers.claim_device("d-5", ANA) is None
    assert store.pointers.claim_device("d-5", ANA) is None
    bob = UserKey.of_user("bob")
    assert store.pointers.claim_device("d-5", bob) == ANA
    assert store.pointers.device_owner("d-5") == bob
    assert not store.pointers.release_device("d-5", only_to=ANA)
    assert store.pointers.release_device("d-5", only_to=bob)
    assert store.pointers.device_owner("d-5") is None


def test_a_session_is_inserted_once_and_can_be_completed(store: Any) -> None:
    session = StoredSession(day=20_000, session_id="s-1", aid="aid-1", started=1_728_000_100.0, ended=None)
    assert store.activity.insert_session(session, EXPIRES) is None
    assert store.activity.insert_session(replace(session, aid="other"), EXPIRES) == session
    store.activity.update_session(20_000, "s-1", ended=1_728_000_200.0)
    found = store.activity.find_sessions([(20_000, "s-1"), (20_001, "s-1")])
    assert found == {(20_000, "s-1"): replace(session, ended=1_728_000_200.0)}
    store.activity.update_session(20_000, "s-1", aid="aid-2")
    assert store.activity.read_day(20_000).session_aids == ["aid-2"]


def test_day_markers(store: Any) -> None:
    store.activity.mark_api_active(20_000, "a", EXPIRES)
    store.activity.mark_api_active(20_000, "a", EXPIRES)
    store.activity.add_new_user(20_000, "a", EXPIRES)
    store.activity.add_new_user(20_000, "b", EXPIRES)
    store.activity.remove_new_user(20_000, "b")
    day = store.activity.read_day(20_000)
    assert (day.session_aids, day.api_aids, day.new_user_aids) == ([], ["a"], ["a"])
    assert store.activity.read_day(20_001).api_aids == []


def test_figures_and_the_last_sweep(store: Any) -> None:
    figures = DayFigures(day=20_000, dau=1, wau=2, mau=3, new_users=1, sessions=4)
    store.figures.put_rollup(figures)
    assert store.figures.get_rollups([20_000, 20_001]) == {20_000: figures}
    assert store.figures.last_sweep() is None
    run = SweepRun(
        "full", at=10.5, started=11.0, finished=12.5, users_read=3, changes=1, definitions={"a": "v1"}
    )
    store.figures.record_sweep(run)
    assert store.figures.last_sweep() == run


def change(user: UserKey, kind: str, at: float, segment: str = "top") -> MembershipChange:
    return MembershipChange(user, segment, kind, at, "sweep", "v1")  # type: ignore[arg-type]


def test_an_entry_or_exit_is_applied_and_logged_once(store: Any) -> None:
    assert store.memberships.record_change(change(ANA, "entered", 1_728_000_000.0))
    assert not store.memberships.record_change(change(ANA, "entered", 1_728_000_001.0))
    assert store.users.load_user(ANA).memberships["top"].definition == "v1"
    assert store.memberships.record_change(change(ANA, "exited", 1_728_000_002.0))
    assert not store.memberships.record_change(change(ANA, "exited", 1_728_000_003.0))
    logged = store.memberships.changes_on_day("top", 20_000, older_than=None, limit=10)
    assert [(c.change, c.at) for c in logged] == [("exited", 1_728_000_002.0), ("entered", 1_728_000_000.0)]
    older = store.memberships.changes_on_day("top", 20_000, older_than=logged[0], limit=10)
    assert older == logged[1:]


def test_members_are_paged_in_token_order_and_counted(store: Any) -> None:
    users = [UserKey.of_user(f"u-{n:02}") for n in range(12)]
    for n, user in enumerate(users):
        store.memberships.record_change(change(user, "entered", 1_728_000_000.0 + n))
    store.memberships.record_change(change(ANA, "entered", 1_728_000_000.0, segment="other"))
    assert store.memberships.count_members("top") == 12
    first = store.memberships.members("top", 5, None)
    assert first == users[:5]
    assert store.memberships.members("top", 100, first[-1]) == users[5:]
    assert store.memberships.members("nobody", 5, None) == []


def test_users_are_found_by_the_hour_they_fall_due(store: Any) -> None:
    hour = 480_000
    store.users.save(ANA, DueRecord(hour * 3600 + 10.0))
    store.users.save(DEVICE, DueRecord(hour * 3600 + 3599.0))
    store.users.save(UserKey.of_user("later"), DueRecord((hour + 1) * 3600.0))
    start = hour * 3600.0
    assert sorted(store.memberships.due_users(start, start + 1800), key=lambda u: u.token) == sorted(
        [ANA, DEVICE], key=lambda u: u.token
    )
    moved = store.users.load_user(ANA).due
    moved.due = (hour + 5) * 3600.0
    assert store.users.save(ANA, moved)
    assert store.memberships.due_users(start, start) == [DEVICE]
    assert len(store.memberships.due_users(start, start + 5 * 3600)) == 3


def test_a_change_stays_in_the_outbox_until_its_event_is_delivered(store: Any) -> None:
    entered = change(ANA, "entered", 1_728_000_000.0)
    exited = change(ANA, "exited", 1_728_000_500.0)
    store.memberships.record_change(entered)
    store.memberships.record_change(exited)
    assert store.memberships.unpublished(until=1_728_000_100.0) == [entered]
    assert store.memberships.unpublished(until=1_728_001_000.0) == [entered, exited]
    store.memberships.mark_published([entered])
    assert store.memberships.unpublished(until=1_728_001_000.0) == [exited]
    # Delivered or not, the change log keeps both.
    assert len(store.memberships.changes_on_day("top", 20_000, older_than=None, limit=10)) == 2


def test_a_fanned_out_full_sweep_counts_each_part_once(store: Any) -> None:
    assert store.figures.full_sweep_plan() is None
    store.figures.begin_full_sweep(FullSweepPlan(at=100.0, started=99.0, parts=3, definitions={"a": "v1"}))
    assert store.figures.finish_part(100.0, 0, users_read=5, changes=1).parts_done == {0}
    again = store.figures.finish_part(100.0, 0, users_read=5, changes=1)  # an SQS redelivery
    assert (again.parts_done, again.users_read, again.changes) == ({0}, 5, 1)
    assert store.figures.finish_part(200.0, 1, users_read=1, changes=0) is None  # another sweep's part
    done = store.figures.finish_part(100.0, 2, users_read=7, changes=2)
    assert (done.parts_done, done.users_read, done.changes, done.definitions) == ({0, 2}, 12, 3, {"a": "v1"})
    store.figures.end_full_sweep(200.0)
    assert store.figures.full_sweep_plan() is not None
    store.figures.end_full_sweep(100.0)
    assert store.figures.full_sweep_plan() is None


def test_an_alias_only_user_is_stored_listed_and_due_like_any_other(store: Any) -> None:
    assert store.users.save(ALIAS, activity("aid-alias"))
    assert store.users.save(ALIAS, EventRecord(name="e", total=1))
    assert store.users.save(ALIAS, DueRecord(480_000 * 3600.0))
    loaded = store.users.load_user(ALIAS)
    assert loaded.key == ALIAS
    assert loaded.exists
    assert loaded.to_profile().identity() == {"user_alias": {"alias_name": "c-1:x", "alias_label": "crm:id%"}}
    assert store.memberships.record_change(change(ALIAS, "entered", 1_728_000_000.0))
    assert store.memberships.members("top", 10, None) == [ALIAS]
    logged = store.memberships.changes_on_day("top", 20_000, older_than=None, limit=10)
    assert [c.user for c in logged] == [ALIAS]
    assert store.memberships.due_users(480_000 * 3600.0, 480_000 * 3600.0 + 1) == [ALIAS]
    assert [u.key for u in store.users.scan_users()] == [ALIAS]
    assert set(store.users.delete_user(ALIAS).events) == {"e"}


def test_a_campaigns_sends_are_read_newest_first_by_page_and_by_window(store: Any) -> None:
    from math import inf

    from kudos.core.records import SendRecord

    for n, user in enumerate((ANA, DEVICE, ALIAS)):
        for k in range(2):
            at = 1_796_000_000.0 + 60 * n + k
            assert store.users.save(user, SendRecord(f"s{n}{k}", "thanks", "entry", at, "queued"))
    assert store.users.save(ANA, SendRecord("other", "another", "entry", 1_796_000_000.0, "queued"))
    newest = store.campaigns.sends("thanks", limit=4)
    assert [send.send_id for _, send in newest] == ["s21", "s20", "s11", "s10"]
    assert newest[0][0] == ALIAS
    rest = store.campaigns.sends("thanks", limit=4, older_than=newest[-1][1])
    assert [send.send_id for _, send in rest] == ["s01", "s00"]

    def window(since: float, until: float) -> list[str]:
        return [send.send_id for _, send in store.campaigns.all_sends("thanks", since, until)]

    assert window(0.0, inf) == ["s00", "s01", "s10", "s11", "s20", "s21"]
    # An open end (the report without `to`, the guardrail since the last resume) is no bound at all.
    assert window(1_796_000_060.0, inf) == ["s10", "s11", "s20", "s21"]
    assert window(1_796_000_001.0, 1_796_000_120.0) == ["s01", "s10", "s11"]


# --- campaigns ------------------------------------------------------------------------------------


def a_send(
    send_id: str,
    at: float,
    campaign: str = "thanks",
    status: SendStatus = "sent",
    pending_at: float | None = None,
) -> SendRecord:
    return SendRecord(
        send_id=send_id,
        campaign=campaign,
        trigger="entry",
        triggered_at=at,
        status=status,
        reason="why" if status not in ("sent", "queued") else None,
        sent_at=at + 1 if status == "sent" else None,
        pending_at=pending_at,
        title="Thanks" if status == "sent" else None,
        body="500 coins" if status == "sent" else None,
    )


def test_a_send_record_round_trips_with_every_field(store: Any) -> None:
    sent = a_send("s-1", 1_728_000_000.25)
    held = a_send("s-2", 1_728_000_100.5, status="held", pending_at=1_728_003_600.0)
    for record in (sent, held):
        assert store.users.save(ANA, record)
    assert store.users.load_user(ANA).sends == {"s-1": sent, "s-2": held}
    assert not store.users.save(ANA, a_send("s-1", 1_728_000_000.25))  # a trigger is recorded once


def test_campaign_states_are_written_under_optimistic_concurrency(store: Any) -> None:
    assert store.campaigns.states() == {}
    assert store.campaigns.state("thanks") is None
    first = CampaignState("thanks", first_seen=1_728_000_000.5)
    assert store.campaigns.save_state(first)
    assert not store.campaigns.save_state(first)  # version 0 again: it exists now
    stored = store.campaigns.state("thanks")
    assert stored == replace(first, version=1)
    changed = replace(
        stored,
        status="paused_by_guardrail",
        since=1_728_000_100.0,
        reason="opt_outs 3% above 2%",
        initial_at=1_728_000_000.5,
        initial_done=True,
        last_fired=1_728_000_050.0,
    )
    assert store.campaigns.save_state(changed)
    assert not store.campaigns.save_state(changed)  # stale: version 1 was replaced
    assert not store.campaigns.save_state(replace(changed, version=5))
    assert store.campaigns.state("thanks") == replace(changed, version=2)
    other = CampaignState("daily", first_seen=7.0)
    assert store.campaigns.save_state(other)
    assert store.campaigns.states() == {
        "thanks": replace(changed, version=2),
        "daily": replace(other, version=1),
    }
    resumed = replace(changed, version=2, status="active", reason=None, since=None)
    assert store.campaigns.save_state(resumed)
    assert store.campaigns.state("thanks") == replace(resumed, version=3)


def test_a_campaigns_sends_are_paged_newest_first(store: Any) -> None:
    users = [ANA, DEVICE, ALIAS, UserKey.of_user("bob")]
    # Two at the same instant (ordered by id), one of another campaign.
    instants = [1_728_000_000.0, 1_728_000_010.0, 1_728_000_010.0, 1_728_000_020.0, 1_728_000_030.0]
    made = []
    for n, at in enumerate(instants):
        user = users[n % len(users)]
        send = a_send(f"s-{n}", at, status="sent" if n % 2 else "queued", pending_at=at + 120)
        assert store.users.save(user, send)
        made.append((user, send))
    other = a_send("other-1", 1_728_000_015.0, campaign="other")
    assert store.users.save(ANA, other)
    newest_first = list(reversed(made))
    first = store.campaigns.sends("thanks", limit=2)
    assert first == newest_first[:2]
    second = store.campaigns.sends("thanks", limit=2, older_than=first[-1][1])
    assert second == newest_first[2:4]
    third = store.campaigns.sends("thanks", limit=2, older_than=second[-1][1])
    assert third == newest_first[4:]
    assert store.campaigns.sends("thanks", limit=2, older_than=third[-1][1]) == []
    assert store.campaigns.sends("thanks", limit=10) == newest_first
    assert store.campaigns.sends("other", limit=10) == [(ANA, other)]
    assert store.campaigns.sends("nobody", limit=10) == []


def test_a_campaigns_sends_in_a_range_include_since_and_exclude_until(store: Any) -> None:
    instants = [99.0, 100.0, 100.5, 150.0, 199.999, 200.0, 250.0]
    for n, at in enumerate(instants):
        assert store.users.save(UserKey.of_user(f"u-{n}"), a_send(f"s-{n}", 1_728_000_000.0 + at))
    assert store.users.save(ANA, a_send("other", 1_728_000_150.0, campaign="other"))
    found = list(store.campaigns.all_sends("thanks", 1_728_000_100.0, 1_728_000_200.0))
    assert [(user.token, send.send_id) for user, send in found] == [
        ("u:u-1", "s-1"),
        ("u:u-2", "s-2"),
        ("u:u-3", "s-3"),
        ("u:u-4", "s-4"),
    ]
    assert found[0][1] == replace(a_send("s-1", 1_728_000_100.0), version=1)
    assert list(store.campaigns.all_sends("thanks", 1_728_000_300.0, 1_728_000_400.0)) == []
    assert len(list(store.campaigns.all_sends("thanks", 0.0, 2_000_000_000.0))) == len(instants)


def test_pending_is_the_queued_and_held_sends_due_by_then_in_every_shard(store: Any) -> None:
    base = 1_728_000_000.0
    due = []
    # Enough ids to land in every shard of the pending index.
    for n in range(24):
        user = UserKey.of_user(f"u-{n % 5}")
        status: SendStatus = "held" if n % 3 == 0 else "queued"
        send = a_send(f"p-{n:02}", base, status=status, pending_at=base + 60 * (n % 4))
        assert store.users.save(user, send)
        due.append((send.pending_at, send.send_id, user))
    # Not pending: ended sends, even with a pending instant left on them, and a pending one without.
    assert store.users.save(ANA, a_send("done", base, status="sent", pending_at=base))
    assert store.users.save(ANA, a_send("capped", base, status="capped", pending_at=base))
    assert store.users.save(ANA, a_send("no-instant", base, status="queued"))
    until = base + 120  # pending_at at the bound is included
    expected = [(user, send_id) for at, send_id, user in sorted(due) if at <= until]
    assert store.campaigns.pending(until) == expected
    assert len(expected) == 18
    assert store.campaigns.pending(base - 1) == []
    # A send that ends leaves the index; one that waits again moves in it.
    user, send_id = expected[0]
    ended = store.users.load_user(user).sends[send_id]
    assert store.users.save(user, replace(ended, status="sent", pending_at=None, sent_at=base + 5))
    waiting = store.users.load_user(*expected[1][:1]).sends[expected[1][1]]
    assert store.users.save(expected[1][0], replace(waiting, pending_at=base + 3600))
    assert store.campaigns.pending(until) == expected[2:]
    assert expected[1] in store.campaigns.pending(base + 3600)


def test_a_rate_slot_is_taken_up_to_the_limit_per_campaign_and_minute(store: Any) -> None:
    minute = 28_800_000
    assert [store.campaigns.take_rate_slot("thanks", minute, 2) for _ in range(3)] == [True, True, False]
    assert store.campaigns.take_rate_slot("thanks", minute + 1, 2)
    assert store.campaigns.take_rate_slot("other", minute, 2)
    assert not store.campaigns.take_rate_slot("thanks", minute, 1)
    assert store.campaigns.take_rate_slot("thanks", minute, 3)
    assert not store.campaigns.take_rate_slot("thanks", minute, 3)


def test_an_entry_and_the_triggers_it_fires_are_written_together_or_not_at_all(store: Any) -> None:
    fired = [a_send("t-1", 1_728_000_000.0, status="queued", pending_at=1_728_000_120.0)]
    fired.append(a_send("t-2", 1_728_000_000.0, campaign="other", status="held_out"))
    assert store.memberships.record_change(change(ANA, "entered", 1_728_000_000.0), new_records=fired)
    assert [send.version for send in fired] == [1, 1]
    loaded = store.users.load_user(ANA)
    assert set(loaded.memberships) == {"top"}
    assert loaded.sends == {send.send_id: send for send in fired}
    assert store.campaigns.pending(1_728_000_120.0) == [(ANA, "t-1")]
    assert store.memberships.record_change(change(ANA, "exited", 1_728_000_050.0))
    # The same trigger again (a duplicate id) makes the whole entry fail: nothing of it is written.
    again = [
        a_send("t-3", 1_728_000_100.0, status="queued", pending_at=1_728_000_220.0),
        a_send("t-1", 1_728_000_000.0, status="queued", pending_at=1_728_000_120.0),
    ]
    assert not store.memberships.record_change(change(ANA, "entered", 1_728_000_100.0), new_records=again)
    assert [send.version for send in again] == [0, 0]
    loaded = store.users.load_user(ANA)
    assert loaded.memberships == {}
    assert set(loaded.sends) == {"t-1", "t-2"}
    assert loaded.sends["t-1"] == fired[0]
    logged = store.memberships.changes_on_day("top", 20_000, older_than=None, limit=10)
    assert [(c.change, c.at) for c in logged] == [("exited", 1_728_000_050.0), ("entered", 1_728_000_000.0)]
    assert store.campaigns.pending(2_000_000_000.0) == [(ANA, "t-1")]
    # An entry that is refused for its membership writes none of its triggers either.
    assert store.memberships.record_change(change(ANA, "entered", 1_728_000_200.0))
    late = [a_send("t-4", 1_728_000_300.0, status="queued", pending_at=1_728_000_420.0)]
    assert not store.memberships.record_change(change(ANA, "entered", 1_728_000_300.0), new_records=late)
    assert "t-4" not in store.users.load_user(ANA).sends


def test_instants_finer_than_a_millisecond_order_sends_as_the_sort_keys_do(store: Any) -> None:
    # Clocks give microseconds; the indexes' sort keys keep milliseconds, then the send id.
    base = 1_728_000_000.0
    made = [
        (ANA, a_send("b", base + 0.0001, status="queued", pending_at=base + 60.0001)),
        (DEVICE, a_send("a", base + 0.0004, status="queued", pending_at=base + 60.0004)),
        (ALIAS, a_send("c", base + 0.0012, status="queued", pending_at=base + 60.0012)),
    ]
    for user, send in made:
        assert store.users.save(user, send)
    by_key = [made[1], made[0], made[2]]  # a, b in the same millisecond; c in the next
    assert store.campaigns.sends("thanks", limit=10) == list(reversed(by_key))
    assert store.campaigns.sends("thanks", limit=10, older_than=made[0][1]) == [made[1]]
    assert list(store.campaigns.all_sends("thanks", base, base + 1)) == by_key
    assert store.campaigns.pending(base + 61) == [(user, send.send_id) for user, send in by_key]
    # Pending to the millisecond: a send due later within `until`'s millisecond is taken too (the
    # sweep queues it again a fraction of a millisecond early, which the sender checks anyway).
    assert store.campaigns.pending(base + 60) == [(DEVICE, "a"), (ANA, "b")]


def test_a_range_of_sends_is_bounded_by_the_exact_instants(store: Any) -> None:
    base = 1_728_000_000.0
    for n, offset in enumerate([-0.0004, 0.0, 9.9996, 10.0]):
        assert store.users.save(UserKey.of_user(f"u-{n}"), a_send(f"s-{n}", base + offset))
    found = store.campaigns.all_sends("thanks", base, base + 10)
    assert [send.send_id for _, send in found] == ["s-1", "s-2"]
