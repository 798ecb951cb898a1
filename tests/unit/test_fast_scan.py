"""The raw Scan path (kudos/store/fast_scan.py) gives exactly what botocore's parser gives.

Both paths run on a real boto3 client answered from the same recorded HTTP bodies (bench/replay.py):
random users, every record kind encoded by the codec, split over pages with LastEvaluatedKey and
ConsumedCapacity; then throttling (retried), errors (ClientError) and other Scans (left alone).
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.replay import Recorded, error_response, page_response, replaying_client
from kudos.core.identity import UserAlias, UserKey
from kudos.core.profile import AttributeInstant
from kudos.core.records import (
    COUNTED_PUSHES_KEPT,
    SESSION_REPORTED,
    ActivityRecord,
    AttributesRecord,
    CampaignRecord,
    DeviceAttributesRecord,
    DueRecord,
    EventRecord,
    MembershipRecord,
    MergedAliasRecord,
    MergedDeviceRecord,
    PurchasesRecord,
    Record,
    RecordKind,
    SendRecord,
    TokenRecord,
)
from kudos.core.settings import Settings
from kudos.store import fast_scan, keys
from kudos.store.codec import Item, encode
from kudos.store.dynamo import Store

TABLE = "users"
# Names end up in sort keys and attribute names: printable, no surrogates (DynamoDB wants UTF-8).
names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
instants = st.floats(min_value=0, max_value=4e9, allow_nan=False).map(lambda x: round(x, 3))
opt_instants = st.none() | instants
days = st.integers(20_000, 20_400)
counts = st.dictionaries(days, st.integers(1, 50), max_size=6)
money = st.dictionaries(days, st.integers(1, 100_000).map(lambda cents: cents / 100), max_size=4)
versions = st.integers(0, 1_000)
custom_values = st.one_of(
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 4)),
    texts,
    st.lists(texts, max_size=3),
    instants.map(AttributeInstant),
)

records_by_kind: dict[RecordKind, st.SearchStrategy[Any]] = {
    RecordKind.ACTIVITY: st.builds(
        ActivityRecord,
        aid=names,
        created_at=instants,
        version=versions,
        sessions_total=st.integers(0, 10**6),
        first_session=opt_instants,
        last_session=opt_instants,
        first_active_day=st.none() | days,
        last_api_day=st.none() | days,
        session_days=counts,
    ),
    RecordKind.ATTRIBUTES: st.builds(
        AttributesRecord,
        version=versions,
        standard=st.dictionaries(st.sampled_from(["country", "platform", "language"]), texts),
        custom=st.dictionaries(names, custom_values, max_size=4),
        push_subscription=st.none() | st.sampled_from(["opted_in", "subscribed", "unsubscribed"]),
        email_subscription=st.none() | st.sampled_from(["subscribed", "unsubscribed"]),
        push_opted_in_at=opt_instants,
        push_unsubscribed_at=opt_instants,
        standard_set_at=opt_instants,
        standard_times=st.dictionaries(st.sampled_from(SESSION_REPORTED), instants),
    ),
    RecordKind.DEVICE_ATTRIBUTES: st.builds(
        DeviceAttributesRecord,
        version=versions,
        values=st.fixed_dictionaries({}, optional={name: texts for name in SESSION_REPORTED}),
        reported_at=st.fixed_dictionaries({}, optional={name: instants for name in SESSION_REPORTED}),
    ),
    RecordKind.EVENT: st.builds(
        EventRecord,
        name=names,
        version=versions,
        total=st.integers(0, 10**6),
        first=opt_instants,
        last=opt_instants,
        by_day=counts,
    ),
    RecordKind.PURCHASES: st.builds(
        PurchasesRecord,
        version=versions,
        total=st.integers(0, 10**4),
        spent_total=st.integers(0, 10**7).map(lambda cents: cents / 100),
        first=opt_instants,
        last=opt_instants,
        count_by_day=counts,
        spent_by_day=money,
    ),
    RecordKind.TOKEN: st.builds(
        TokenRecord,
        device_id=names,
        platform=st.sampled_from(["ios", "android"]),
        token=texts,
        enabled=st.booleans(),
        valid=st.booleans(),
        updated_at=instants,
        version=versions,
        endpoint=st.none() | texts,
    ),
    RecordKind.CAMPAIGN: st.builds(
        CampaignRecord,
        campaign_id=names,
        version=versions,
        received=st.booleans(),
        opened=st.booleans(),
        converted=st.booleans(),
        in_control=st.booleans(),
        last_received=opt_instants,
        last_opened=opt_instants,
        open_days=counts,
        receive_days=counts,
        counted=st.lists(texts, max_size=COUNTED_PUSHES_KEPT),
    ),
    RecordKind.MERGED_DEVICE: st.builds(MergedDeviceRecord, device_id=names, version=versions),
    RecordKind.MERGED_ALIAS: st.builds(
        MergedAliasRecord, alias=st.builds(UserAlias, label=names, name=names), version=versions
    ),
    RecordKind.MEMBERSHIP: st.builds(
        MembershipRecord, segment=names, definition=names, since=instants, version=versions
    ),
    RecordKind.DUE: st.builds(DueRecord, due=instants, version=versions),
    RecordKind.SEND: st.builds(
        SendRecord,
        send_id=names,
        campaign=names,
        trigger=st.sampled_from(["entry", "initial", "scheduled"]),
        triggered_at=instants,
        status=st.sampled_from(["queued", "held", "sent", "held_out", "failed", "paused"]),
        reason=st.none() | texts,
        sent_at=opt_instants,
        pending_at=opt_instants,
        title=st.none() | texts,
        body=st.none() | texts,
        version=versions,
        influence_until=opt_instants,
        delivered_at=opt_instants,
        opened_at=opt_instants,
        direct_open=st.booleans(),
        converted_at=opt_instants,
        opted_out_at=opt_instants,
    ),
}
assert set(records_by_kind) == set(RecordKind), "a strategy for every record kind"

user_keys = st.one_of(
    st.builds(UserKey, user_id=names, device_id=st.none()),
    st.builds(UserKey, user_id=st.none(), device_id=names),
)


@st.composite
def users(draw: st.DrawFn) -> tuple[UserKey, list[Record]]:
    key = draw(user_keys)
    records: list[Record] = [draw(records_by_kind[RecordKind.ACTIVITY])] if draw(st.booleans()) else []
    for kind in draw(st.lists(st.sampled_from(list(RecordKind)), max_size=8)):
        records.append(draw(records_by_kind[kind]))
    return key, records


def table_items(population: list[tuple[UserKey, list[Record]]]) -> list[Item]:
    """Items in Scan order: one run per partition; pointers (not users) in between."""
    by_pk: dict[str, dict[str, Item]] = {}
    for key, records in population:
        for record in records:
            item = encode(key, record)
            by_pk.setdefault(item[keys.PK]["S"], {})[item[keys.SK]["S"]] = item
        alias = {
            keys.PK: {"S": keys.alias_pk(UserKey.of_device(f"alias-of-{key.token}"))},
            keys.SK: {"S": keys.ALIAS_SK},
        }
        by_pk.setdefault(alias[keys.PK]["S"], {})[keys.ALIAS_SK] = {**alias, "to": {"S": key.token}}
    return [item for pk in sorted(by_pk) for _, item in sorted(by_pk[pk].items())]


def scan_pages(items: list[Item], page_size: int) -> list[Recorded]:
    pages = []
    for start in range(0, max(len(items), 1), page_size):
        chunk = items[start : start + page_size]
        body: dict[str, Any] = {
            "Items": chunk,
            "Count": len(chunk),
            "ScannedCount": len(chunk),
            "ConsumedCapacity": {"TableName": TABLE, "CapacityUnits": 0.5 * (1 + len(chunk) // 7)},
        }
        if start + page_size < len(items):
            body["LastEvaluatedKey"] = {name: chunk[-1][name] for name in (keys.PK, keys.SK)}
        pages.append(page_response(body))
    return pages


def store_on(responses: list[Recorded], *, raw: bool) -> tuple[Store, Any]:
    client, replayer = replaying_client(responses)
    store = Store(Settings(users_table=TABLE, activity_table="activity"), client)
    store.users.raw_scan = raw
    return store, replayer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(users(), max_size=12), st.integers(1, 9))
def test_the_raw_path_yields_exactly_what_botocore_yields(population, page_size):
    pages = scan_pages(table_items(population), page_size)

    boto_client, _ = replaying_client(pages)
    raw_client, _ = replaying_client(pages)
    for _ in pages:  # page by page, the whole response: items, keys, counts, capacity, metadata
        assert fast_scan.raw_scan(raw_client, TableName=TABLE) == boto_client.scan(TableName=TABLE)

    boto_store, boto_replayer = store_on(pages, raw=False)
    raw_store, raw_replayer = store_on(pages, raw=True)
    with mock.patch.object(fast_scan, "decode_body", wraps=json.loads) as loads:
        raw_users = list(raw_store.users.scan_users())
    assert loads.call_count == len(pages), "every page went the raw way"
    assert raw_users == list(boto_store.users.scan_users())
    assert raw_replayer.requests == boto_replayer.requests  # the same pagination (ExclusiveStartKey)
    assert raw_store.meter.reported_read_units == boto_store.meter.reported_read_units > 0


def test_throttling_is_retried_and_errors_are_client_errors():
    key = UserKey("u-1", None)
    page = scan_pages(table_items([(key, [ActivityRecord(aid="a", created_at=1.0)])]), 10)
    store, replayer = store_on(
        [error_response(400, "ProvisionedThroughputExceededException"), *page], raw=True
    )
    assert [user.key for user in store.users.scan_users()] == [key]
    assert len(replayer.requests) == 2  # the throttled request, then its retry

    store, _ = store_on([error_response(400, "ResourceNotFoundException", "no table")], raw=True)
    with pytest.raises(ClientError) as raised:
        list(store.users.scan_users())
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert isinstance(raised.value, store.client.exceptions.ResourceNotFoundException)


def test_other_scans_on_the_same_client_are_parsed_by_botocore():
    page = scan_pages([], 1)
    store, _ = store_on(page * 2, raw=True)
    list(store.users.scan_users())  # installs the handler on the shared client
    with mock.patch.object(fast_scan, "decode_body", wraps=json.loads) as loads:
        response = store.client.scan(TableName=TABLE)
    assert loads.call_count == 0
    assert response["Items"] == []


def test_a_client_without_events_uses_its_own_scan():
    class Bare:
        def __init__(self) -> None:
            self.calls = 0

        def scan(self, **_: Any) -> dict[str, Any]:
            self.calls += 1
            return {"Items": []}

    bare = Bare()
    store = Store(Settings(users_table=TABLE, activity_table="activity"), bare)
    assert list(store.users.scan_users()) == []
    assert bare.calls == 1
