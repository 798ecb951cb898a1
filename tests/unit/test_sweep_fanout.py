"""A full sweep fanned out over parallel Scan parts ends as one full sweep does, whatever order the
parts arrive in and however often the queue delivers them; and the SQS queue carries one message
per part (moto, in process)."""

from __future__ import annotations

import json
import random

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from dsl import load_segments
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import SECONDS_PER_DAY, format_instant, parse_instant
from kudos.ingest.sessions import ingest_sessions
from kudos.segments.sweep import run_sweep, run_sweep_part
from kudos.store.memory import MemoryStore
from kudos.store.sweep_queue import SqsSweepQueue

SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)
NOW = parse_instant("2026-11-22T12:00:00Z")
AT = NOW + 8 * SECONDS_PER_DAY


def populated() -> MemoryStore:
    store = MemoryStore()
    for n in range(9):
        sessions = [
            {"session_id": f"s-{n}-{k}", "device_id": f"d-{n}", "started_at": format_instant(NOW - k * 7200)}
            for k in range(1 + n % 3)
        ]
        ingest_sessions(store, SEGMENTS, Settings(), NOW, {"sessions": sessions})
    return store


def memberships(store: MemoryStore) -> dict[str, list[str]]:
    return {u.key.token: sorted(u.memberships) for u in store.users.scan_users()}


def single_worker() -> tuple[dict[str, list[str]], int]:
    store = populated()
    run = run_sweep(store, SEGMENTS, AT, lambda: AT, full=True)
    return memberships(store), run.changes


EXPECTED, EXPECTED_CHANGES = single_worker()


@settings(max_examples=25, deadline=None)
@given(parts=st.integers(min_value=2, max_value=6), seed=st.integers(), repeats=st.integers(0, 3))
def test_parts_in_any_order_and_redelivered_make_one_full_sweep(parts: int, seed: int, repeats: int) -> None:
    store = populated()
    # The scheduled invocation only plans and queues the parts: nothing has completed yet.
    assert run_sweep(store, SEGMENTS, AT, lambda: AT, full=True, parts=parts) is None
    deliveries = list(store.sweep_queue.messages)
    rng = random.Random(seed)
    deliveries += rng.choices(deliveries, k=repeats)
    rng.shuffle(deliveries)
    completed = [run_sweep_part(store, SEGMENTS, at, part, n, lambda: AT) for at, part, n in deliveries]
    finished = [run for run in completed if run is not None]
    assert len(finished) == 1
    assert (finished[0].kind, finished[0].users_read, finished[0].changes) == ("full", 9, EXPECTED_CHANGES)
    assert store.figures.last_sweep() == finished[0]
    assert store.figures.full_sweep_plan() is None
    assert memberships(store) == EXPECTED


def test_the_queue_carries_one_message_per_part() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="sweep-parts")["QueueUrl"]
        SqsSweepQueue(Settings(sweep_queue_url=url)).send_parts(AT, 12)
        bodies = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            bodies += [json.loads(message["Body"]) for message in batch]
            for message in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(body["part"] for body in bodies) == list(range(12))
    assert {(body["at"], body["parts"]) for body in bodies} == {(AT, 12)}
