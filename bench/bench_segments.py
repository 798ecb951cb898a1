"""Segment sweep benchmark: every deployed segment over stored users, from the wire and in memory.

Ours, per user: decode the items into records, assemble the Profile, evaluate every segment. The
baseline, measured in the same run, is what most code does to read the same items and nothing
more: boto3 turning them into Python dicts (TypeDeserializer). Three levels, each interleaved with
its baseline over several rounds after a warm-up (bench/stats.py), medians with their range:

1. a real Scan of DynamoDB Local, page by page (Store.scan_users against boto3's resource
   Table.scan): HTTP, the server and parsing included;
2. the same Scan's recorded HTTP response bodies, parsed again by botocore's JSON parser on both
   sides (what every client call does), then TypeDeserializer, or our Store.scan_users + segments:
   the client-side cost of a sweep without the server's;
3. in memory, from items already parsed into low-level dicts: decoding and evaluating alone.
"""

from __future__ import annotations

import argparse
import random
import uuid
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.parsers import create_parser

from bench import stats
from bench.backends import dynamodb_endpoint
from dsl import load_segments
from kudos.core.identity import UserKey
from kudos.core.profile import AttributeInstant
from kudos.core.records import (
    ActivityRecord,
    AttributesRecord,
    EventRecord,
    PurchasesRecord,
    TokenRecord,
    UserRecords,
)
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import SECONDS_PER_DAY, day_of, parse_instant
from kudos.local.dynamodb import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, create_local_tables
from kudos.store.codec import Item, decode, encode
from kudos.store.dynamo import Store
from kudos.store.keys import user_of_pk

NOW = parse_instant("2026-11-22T12:00:00Z")
TODAY = day_of(NOW)
GOAL_USERS_PER_SECOND = 100_000


def random_user(rng: random.Random, index: int) -> list[Item]:
    key = UserKey(f"u-{index}", None) if rng.random() < 0.8 else UserKey(None, f"d-{index}")
    activity_rate = rng.choice([0.9, 0.5, 0.15, 0.02])
    days = {TODAY - d: rng.randint(1, 4) for d in range(90) if rng.random() < activity_rate}
    last = max(days, default=TODAY - 80)
    records: list[Any] = [
        ActivityRecord(
            aid=f"a{index}",
            created_at=NOW - 200 * SECONDS_PER_DAY,
            version=3,
            sessions_total=sum(days.values()) + rng.randint(0, 300),
            first_session=NOW - 200 * SECONDS_PER_DAY,
            last_session=last * SECONDS_PER_DAY + 3600.0,
            first_active_day=TODAY - 200,
            session_days=days,
        ),
        AttributesRecord(
            version=2,
            standard={"country": rng.choice(["FR", "US", "DE"]), "platform": rng.choice(["ios", "android"])},
            custom={
                "plan": rng.choice(["free", "gold"]),
                "is_employee": rng.random() < 0.02,
                "tags": ["a"],
                "renewal": AttributeInstant(NOW + 86400.0),
            },
            push_subscription=rng.choice(["opted_in", "subscribed", "unsubscribed"]),
        ),
    ]
    if rng.random() < 0.5:
        cart = {TODAY - d: 1 for d in range(14) if rng.random() < 0.3}
        records.append(
            EventRecord(
                name="added_to_cart", total=len(cart) + 3, first=NOW - 9e6, last=NOW - 3600, by_day=cart
            )
        )
    if rng.random() < 0.3:
        spent = {TODAY - d: 9.99 for d in range(60) if rng.random() < 0.1}
        records.append(
            PurchasesRecord(
                total=len(spent),
                spent_total=sum(spent.values()),
                first=NOW - 5e6,
                last=NOW - 7200,
                count_by_day={d: 1 for d in spent},
                spent_by_day=spent,
            )
        )
    if rng.random() < 0.7:
        records.append(
            TokenRecord(device_id=f"dev-{index}", platform="ios", token="t", enabled=True, updated_at=NOW)
        )
    return [encode(key, record) for record in records]


def sweep(users: list[list[Item]], segments: Any) -> int:
    """What the members route and a scheduled sweep do per user; returns total memberships."""
    members = 0
    for items in users:
        user = UserRecords(user_of_pk(items[0]["pk"]["S"]))
        for item in items:
            record = decode(item)
            if record is not None:
                user.add(record)
        members += sum(segments.evaluate_all(user.to_profile(), NOW).values())
    return members


def boto3_deserialize(users: list[list[Item]]) -> int:
    deserializer = TypeDeserializer()
    attributes = 0
    for items in users:
        for item in items:
            attributes += len({name: deserializer.deserialize(value) for name, value in item.items()})
    return attributes


def sweep_store(store: Store, segments: Any) -> tuple[int, int]:
    """Ours over a Scan: Store.scan_users (what the segment job runs), every segment per user."""
    users = members = 0
    for user in store.users.scan_users():
        users += 1
        members += sum(segments.evaluate_all(user.to_profile(), NOW).values())
    return users, members


# --- from the wire --------------------------------------------------------------------------------


def load_table(client: Any, table: str, users: list[list[Item]]) -> None:
    items = [item for user in users for item in user]
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {
            table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        }
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def record_scan(client: Any, table: str) -> list[dict[str, Any]]:
    """One full Scan of `table`, as the HTTP responses botocore received (status, headers, body)."""
    recorded: list[dict[str, Any]] = []

    def keep(http_response: Any, **_: Any) -> None:
        recorded.append(
            {
                "status_code": http_response.status_code,
                "headers": dict(http_response.headers),
                "body": http_response.content,
            }
        )

    client.meta.events.register("after-call.dynamodb.Scan", keep)
    try:
        request: dict[str, Any] = {"TableName": table, "ReturnConsumedCapacity": "TOTAL"}
        while True:
            response = client.scan(**request)
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    finally:
        client.meta.events.unregister("after-call.dynamodb.Scan", keep)
    return recorded


class ReplayClient:
    """Answers Scan with recorded HTTP responses, parsed by botocore's parser as a client does."""

    def __init__(self, client: Any, pages: list[dict[str, Any]]) -> None:
        model = client.meta.service_model
        self._shape = model.operation_model("Scan").output_shape
        self._parser = create_parser(model.metadata["protocol"])
        self._pages = pages
        self._next = 0

    def parse(self, page: dict[str, Any]) -> dict[str, Any]:
        parsed: dict[str, Any] = self._parser.parse(page, self._shape)
        return parsed

    def scan(self, **_: Any) -> dict[str, Any]:
        page = self._pages[self._next]
        self._next = (self._next + 1) % len(self._pages)
        return self.parse(page)


def boto3_parse_and_deserialize(replay: ReplayClient, pages: list[dict[str, Any]]) -> int:
    """boto3's full path for a Scan response: botocore's parser, then TypeDeserializer per item."""
    deserializer = TypeDeserializer()
    attributes = 0
    for page in pages:
        for item in replay.parse(page)["Items"]:
            attributes += len({name: deserializer.deserialize(value) for name, value in item.items()})
    return attributes


def boto3_table_scan(table: Any) -> int:
    """How most code reads a whole table: the resource's Table.scan, page by page, into dicts."""
    items = 0
    request: dict[str, Any] = {}
    while True:
        response = table.scan(**request)
        items += len(response["Items"])
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_segments", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=None, help="users swept in memory")
    parser.add_argument("--scan-users", type=int, default=None, help="users stored and scanned")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--endpoint-url", default=None, help="a running DynamoDB Local (else one is started)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    quick = args.quick or stats.quick_requested()
    memory_users = args.users or (300 if quick else 10_000)
    scan_users = args.scan_users or (100 if quick else 2_500)
    rounds = args.rounds or (2 if quick else 5)
    rng = random.Random(args.seed)
    users = [random_user(rng, index) for index in range(max(memory_users, scan_users))]
    segments = load_segments(DEFAULT_SEGMENTS_DIR)
    print(
        f"== segment sweep: {len(segments)} segments ({', '.join(segments)}), one core; "
        f"median (min–max) of {rounds} interleaved rounds after a warm-up round =="
    )

    with dynamodb_endpoint(args.endpoint_url) as url:
        settings = Settings(
            users_table=f"bench-users-{uuid.uuid4().hex[:8]}",
            activity_table=f"bench-activity-{uuid.uuid4().hex[:8]}",
            dynamodb_endpoint_url=url,
        )
        client = create_local_tables(url, settings)
        try:
            stored = users[:scan_users]
            load_table(client, settings.users_table, stored)
            items = sum(len(user) for user in stored)
            resource = boto3.resource(
                "dynamodb",
                region_name=settings.region,
                endpoint_url=url,
                aws_access_key_id=DUMMY_ACCESS_KEY,
                aws_secret_access_key=DUMMY_SECRET_KEY,
            )
            table = resource.Table(settings.users_table)
            store = Store(settings, client)
            scanned = stats.interleave(
                {"boto3": lambda: boto3_table_scan(table), "kudos": lambda: sweep_store(store, segments)},
                rounds=rounds,
            )
            meter_store = Store(settings, client)
            found, _ = sweep_store(meter_store, segments)
            assert found == scan_users, (found, scan_users)
            read_units = meter_store.meter.reported_read_units / scan_users
            pages = record_scan(client, settings.users_table)
        finally:
            for name in (settings.users_table, settings.activity_table):
                client.delete_table(TableName=name)

    print(f"-- 1. real Scan of DynamoDB Local: {scan_users:,} users, {items:,} items, {len(pages)} pages")
    _report(
        "boto3 resource Table.scan into dicts",
        "Store.scan_users + every segment",
        scanned,
        scan_users,
    )
    print(f"   read units: {read_units:.3f} per user scanned (eventually consistent Scan, as reported)")

    replay = ReplayClient(client, pages)
    replay_store = Store(settings, replay)
    replayed = stats.interleave(
        {
            "boto3": lambda: boto3_parse_and_deserialize(replay, pages),
            "kudos": lambda: sweep_store(replay_store, segments),
        },
        rounds=rounds,
    )
    print(f"-- 2. the same Scan's {len(pages)} recorded HTTP bodies, parsed on both sides (no server)")
    _report(
        "botocore parser + TypeDeserializer",
        "botocore parser + decode + segments",
        replayed,
        scan_users,
    )

    in_memory = users[:memory_users]
    memory = stats.interleave(
        {"boto3": lambda: boto3_deserialize(in_memory), "kudos": lambda: sweep(in_memory, segments)},
        rounds=rounds,
    )
    print(f"-- 3. in memory, from items already parsed into low-level dicts: {memory_users:,} users")
    _report("TypeDeserializer only", "decode + profile + every segment", memory, memory_users)
    print(f"memberships found in memory: {sweep(in_memory, segments)}")


def _report(baseline: str, ours: str, seconds: dict[str, stats.Samples], users: int) -> None:
    width = max(len(baseline), len(ours)) + 1
    base, kudos = seconds["boto3"], seconds["kudos"]
    print(
        f"   baseline: {baseline + ':':<{width}} {base.rate(users).show()} users/s, "
        f"{base.per(users).show(1e6, 1)} µs per user"
    )
    print(
        f"   kudos:    {ours + ':':<{width}} {kudos.rate(users).show()} users/s, "
        f"{kudos.per(users).show(1e6, 1)} µs per user"
    )
    print(f"   kudos time / baseline time: {stats.ratio(kudos, base).show(digits=2, unit='x')}")


if __name__ == "__main__":
    main()
