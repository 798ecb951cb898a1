"""Membership changes as EventBridge events: what a subscriber receives (moto's EventBridge routing
to SQS, in process), retries of rejected entries, and the outbox that keeps an undelivered change
until the sweep announces it."""

from __future__ import annotations

import json
from typing import Any

import boto3
from moto import mock_aws

from dsl import load_segments
from kudos.core.identity import UserKey
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import SECONDS_PER_DAY, format_instant, parse_instant
from kudos.ingest.sessions import ingest_sessions
from kudos.segments.sweep import run_sweep
from kudos.store.events import EventBridgeEvents
from kudos.store.memory import MemoryStore
from kudos.store.ports import MembershipChange

NOW = parse_instant("2026-11-22T12:00:00Z")
SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)


def changes(count: int) -> list[MembershipChange]:
    return [
        MembershipChange(UserKey.of_user(f"u-{n}"), "top_users", "entered", NOW + n, "ingest", "abc123")
        for n in range(count)
    ]


def test_a_subscriber_receives_one_event_per_change() -> None:
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        events.create_event_bus(Name="kudos-bus")
        queue = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name="segments", EventBusName="kudos-bus", EventPattern=json.dumps({"source": ["kudos.segments"]})
        )
        events.put_targets(Rule="segments", EventBusName="kudos-bus", Targets=[{"Id": "q", "Arn": arn}])
        bus = EventBridgeEvents(Settings(event_bus_name="kudos-bus"))
        assert bus.publish(changes(12)) == []  # two PutEvents calls: at most 10 entries each
        received: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            received += [json.loads(message["Body"]) for message in batch]
            for message in batch:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert len(received) == 12
    assert {event["detail-type"] for event in received} == {"Segment Entered"}
    first = next(event["detail"] for event in received if event["detail"]["user"] == {"user_id": "u-0"})
    assert first == {
        "id": f"top_users/u:u-0/entered/{NOW:.3f}",
        "segment": "top_users",
        "user": {"user_id": "u-0"},
        "change": "entered",
        "at": format_instant(NOW),
        "by": "ingest",
        "version": "abc123",
    }


class FlakyBus:
    """A PutEvents that rejects the second entry of each call once, as EventBridge may under load."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.rejected_once: set[str] = set()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        results = []
        for index, entry in enumerate(Entries):
            key = entry["Detail"]
            if index == 1 and key not in self.rejected_once:
                self.rejected_once.add(key)
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": "e"})
        failed = sum("ErrorCode" in result for result in results)
        return {"FailedEntryCount": failed, "Entries": results}


def test_rejected_entries_are_sent_again_and_only_they() -> None:
    flaky = FlakyBus()
    bus = EventBridgeEvents(Settings(event_bus_name="kudos-bus"), client=flaky)
    assert bus.publish(changes(3)) == []
    assert flaky.calls == [3, 1]


def test_an_undelivered_change_waits_in_the_outbox_until_a_sweep_announces_it() -> None:
    store = MemoryStore()
    store.events.failing = True
    sessions = [
        {"session_id": f"s-{n}", "device_id": "d-1", "started_at": format_instant(NOW - n * 3600)}
        for n in range(2)
    ]
    ingest_sessions(store, SEGMENTS, Settings(), NOW, {"sessions": sessions})
    recorded = store.memberships.unpublished(until=NOW)
    assert [(c.segment, c.change) for c in recorded] == [("new_users", "entered")]
    assert store.events.published == []
    store.events.failing = False
    later = NOW + SECONDS_PER_DAY
    run_sweep(store, SEGMENTS, later, lambda: later)
    assert store.events.published[0] == recorded[0]
    assert store.memberships.unpublished(until=later) == []
