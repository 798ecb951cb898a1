"""The campaign sender: sends per second through `deliver` on DynamoDB Local, against a bare SNS publish
loop to the same endpoints in the same run, and the write units each send costs.

Both sides publish to the same SNS (moto, in process): the difference is what the sender does
around each publish (read the user in one Query, check the send rules, render the templates, claim
the send before publishing and confirm it after, take a `rate` slot, re-evaluate the user's
segments). Tokens already have their platform endpoints, as they do after a campaign's first send.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
import uuid
from typing import Any

import boto3
from moto import mock_aws

from bench import stats
from bench.bench_sweep import fresh_tables
from dsl import SegmentSet, compile_sources
from kudos.campaigns.rules import send_id_for
from kudos.campaigns.sender import deliver
from kudos.core.identity import UserKey
from kudos.core.records import AttributesRecord, MembershipRecord, SendRecord, TokenRecord, UserRecords
from kudos.core.settings import Settings
from kudos.core.timeutil import parse_instant
from kudos.ingest.activity import fresh_activity
from kudos.local.dynamodb import dynamodb_local
from kudos.segments.membership import reevaluate
from kudos.store.codec import encode
from kudos.store.dynamo import Store
from kudos.store.memory import MemorySendQueue
from kudos.store.ports import PushMessage, QueuedSend
from kudos.store.sns_push import SnsPush, sns_message

NOW = parse_instant("2026-11-22T12:00:00Z")
# The shipped thank-you campaign's settings (segments/top_users.seg), on an audience the bench can fill
# without simulating 30 days of sessions.
RULES = """
segment vips "VIPs" { attr.vip = true }
campaign thank_vips "Thank you" {
    audience vips
    send on entry
    reeligible after 30 days
    holdout 10%
    quiet hours 22:00 to 08:00
    cap 3 per 7 days
    rate 100000 per minute
    expire after 72 hours
    push {
        title "Thank you, {{ first_name | default: 'friend' }}!"
        body "You're one of our top users: {{ attr.coins_bonus | default: 500 }} coins are waiting."
        deep_link "myapp://rewards/top"
    }
}
"""


def _platform_application(sns: Any) -> str:
    response = sns.create_platform_application(
        Name=f"bench-{uuid.uuid4().hex[:6]}", Platform="GCM", Attributes={"PlatformCredential": "key"}
    )
    return str(response["PlatformApplicationArn"])


def _users(store: Store, push: SnsPush, segments: SegmentSet, users: int) -> list[QueuedSend]:
    """Members of the audience with a token (and its endpoint) and one queued send each, written
    straight to the table."""
    queued = []
    client = store.client
    requests = []
    for n in range(users):
        key = UserKey.of_user(f"bench-{n:05d}")
        token = f"token-{uuid.uuid4().hex}"
        records: list[Any] = [
            fresh_activity(NOW),
            AttributesRecord(
                standard={"first_name": f"User {n}"}, custom={"vip": True}, push_subscription="opted_in"
            ),
            TokenRecord(
                f"d-{n}", "android", token, True, updated_at=NOW, endpoint=push.endpoint("android", token)
            ),
        ]
        records.append(MembershipRecord("vips", segments["vips"].version, NOW))
        send_id = send_id_for("thank_vips", key, NOW)
        records.append(SendRecord(send_id, "thank_vips", "entry", NOW, "queued", pending_at=NOW + 120))
        for record in records:
            record.version = 1  # as stored by a versioned write (0 would mean "not stored yet")
        requests += [{"PutRequest": {"Item": encode(key, record)}} for record in records]
        queued.append(QueuedSend(key, send_id, NOW))
    for start in range(0, len(requests), 25):
        client.batch_write_item(RequestItems={store.settings.users_table: requests[start : start + 25]})
    return queued


def run(url: str, users: int, rounds: int) -> dict[str, stats.Samples]:
    segments: SegmentSet = compile_sources([("bench.seg", RULES)])
    write_units: list[float] = []
    published: list[int] = []
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        application = _platform_application(sns)
        push = SnsPush(Settings(fcm_application_arn=application), client=sns)
        message = PushMessage(
            "thank_vips", "x" * 24, "Thank you, friend!", "You're one of our top users: 500 coins."
        )

        def bare_loop() -> stats.Timed:
            endpoints = [push.endpoint("android", f"bare-{uuid.uuid4().hex}") for _ in range(users)]
            started = time.perf_counter()
            for endpoint in endpoints:
                assert endpoint is not None
                sns.publish(TargetArn=endpoint, MessageStructure="json", Message=sns_message(message))
            return stats.Timed(time.perf_counter() - started)

        def sender() -> stats.Timed:
            with fresh_tables(url, "send") as settings:
                store = Store(settings)
                store.send_queue = MemorySendQueue()  # type: ignore[assignment]  # rate re-queues stay here
                queue = _users(store, push, segments, users)
                before = store.meter.billed_write_units

                def again(user: UserRecords, at: float) -> None:
                    reevaluate(store, segments, user, at, "ingest")

                started = time.perf_counter()
                sent = [deliver(store, push, segments, queued, lambda: NOW, again) for queued in queue]
                elapsed = time.perf_counter() - started
                write_units.append((store.meter.billed_write_units - before) / users)
                published.append(sum(1 for send in sent if send is not None and send.status == "sent"))
                return stats.Timed(elapsed)

        timings = stats.interleave({"bare SNS publish": bare_loop, "kudos sender": sender}, rounds=rounds)
    timings["write units"] = stats.Samples(tuple(write_units[-rounds:]))
    timings["sent"] = stats.Samples(tuple(float(count) for count in published[-rounds:]))
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_send", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--endpoint-url", default=None, help="a running DynamoDB Local (else one is started)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    quick = args.quick or stats.quick_requested()
    users = args.users or (20 if quick else 400)
    rounds = args.rounds or (2 if quick else 5)
    print(
        f"== campaign sender: {users} queued sends per round; median (min–max) of {rounds} "
        "interleaved rounds after a warm-up round =="
    )
    # DynamoDB Local, as make bench runs it (not the embedded moto a bare dynamodb_endpoint() gives):
    # its ConsumedCapacity counts the index writes too, as AWS bills them.
    local = contextlib.nullcontext(args.endpoint_url) if args.endpoint_url else dynamodb_local()
    with local as url:
        timings = run(url, users, rounds)
    bare, kudos = timings["bare SNS publish"], timings["kudos sender"]
    print(f"   baseline: bare SNS publish loop      {bare.rate(users).show()} pushes/s")
    print(f"   kudos sender (DynamoDB Local + SNS)   {kudos.rate(users).show()} sends/s")
    print(f"   sender time / bare publish time      {stats.ratio(kudos, bare).show(digits=2, unit='x')}")
    print(f"   sent per round                       {timings['sent'].show()} of {users}")
    print(f"   billed write units per send           {timings['write units'].show(digits=2)}")
    print(
        "   (the claim before the publish and the confirmation after, each with its index writes "
        "(sends; pending on the claim), and the campaign's rate count: see docs/costs.md)"
    )
    print(json.dumps({"sends_per_second": round(kudos.rate(users).median, 1)}))


if __name__ == "__main__":
    main()
