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
    TokenRecord,
    event_key,
)
from kudos.store.dynamo import Store
from kudos.store.memory import MemoryStore
from kudos.store.ports import DayFigures, FullSweepPlan, MembershipChange, StoredSession, SweepRun
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
