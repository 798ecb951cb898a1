"""Segment sweep benchmark: every deployed segment over stored user items, deserialization included.

Items are what a Scan returns (low-level DynamoDB JSON). Per user: decode the items into records,
assemble the Profile, evaluate every segment. The baseline, measured in the same run, is boto3's
own TypeDeserializer turning the same items into Python dicts: deserialization alone, the way most
code reads DynamoDB.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

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
from kudos.core.settings import DEFAULT_SEGMENTS_DIR
from kudos.core.timeutil import SECONDS_PER_DAY, day_of, parse_instant
from kudos.store.codec import Item, decode, encode
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_segments", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    users = [random_user(rng, index) for index in range(args.users)]
    segments = load_segments(DEFAULT_SEGMENTS_DIR)

    started = time.perf_counter()
    boto3_deserialize(users)
    baseline = args.users / (time.perf_counter() - started)
    started = time.perf_counter()
    members = sweep(users, segments)
    rate = args.users / (time.perf_counter() - started)

    print("== segment sweep over stored items (one core, in memory) ==")
    print(
        f"{args.users} users, {sum(len(u) for u in users)} items, {len(segments)} segments: {', '.join(segments)}"
    )
    print(f"baseline: boto3 TypeDeserializer only        {baseline:10.0f} users/s")
    print(
        f"kudos: decode + profile + every segment      {rate:10.0f} users/s  ({rate / baseline:.2f}x baseline)"
    )
    # The per-core goal is for evaluation in memory (bench_dsl's evaluate_all line); over stored items
    # the floor is reading DynamoDB's JSON at all, which the baseline alone does at the rate above.
    print(
        f"in-memory goal {GOAL_USERS_PER_SECOND} users/s: see evaluate_all above; "
        f"here {1e6 / rate:.1f} µs per user, while boto3 deserializing alone takes {1e6 / baseline:.1f}"
    )
    print(f"memberships found: {members}")


if __name__ == "__main__":
    main()
