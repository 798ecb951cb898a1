"""Ingest benchmark: sessions through the real handler into DynamoDB Local.

Prints sessions/s against a baseline measured in the same run (one bare PutItem per session: the
least any design that stores sessions must do), and write units per new session and per
duplicate as DynamoDB bills them (reported ConsumedCapacity plus, by AWS's rules, what DynamoDB
Local does not report: failed conditional writes and the 2x of transactions).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kudos import runtime
from kudos.core.settings import Settings
from kudos.core.timeutil import parse_instant
from kudos.local.apigw import LambdaContext, build_event, http_response
from kudos.local.dynamodb import create_local_tables, dynamodb_local
from kudos.store.dynamo import Store

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOAL_UNITS_PER_NEW_SESSION = 2.5
GOAL_UNITS_PER_DUPLICATE = 1.0


def workload(sessions: int, users: int, seed: int, offline_share: float) -> list[dict[str, Any]]:
    """SDK upload bodies: online ones carry one session, offline ones a batch of 2 to 20."""
    rng = random.Random(seed)
    by_user: dict[int, list[dict[str, Any]]] = {}
    for index in range(sessions):
        user = min(int(rng.paretovariate(1.2)) - 1, users - 1)  # a few heavy users, a long tail
        started = NOW - timedelta(seconds=rng.randrange(1, 29 * 86_400))
        item = {
            "session_id": f"s-{seed}-{index}",
            "device_id": f"d-{user}",
            "started_at": started.isoformat(),
            "ended_at": (started + timedelta(minutes=rng.randrange(1, 40))).isoformat(),
            "platform": "ios" if user % 2 else "android",
            "app_version": "5.2.0",
        }
        if user % 5:
            item["user_id"] = f"u-{user}"
        by_user.setdefault(user, []).append(item)
    bodies = []
    for items in by_user.values():
        items.sort(key=lambda item: item["started_at"])
        start = 0
        while start < len(items):
            size = rng.randrange(2, 21) if rng.random() < offline_share else 1
            bodies.append({"sent_at": NOW.isoformat(), "sessions": items[start : start + size]})
            start += size
    rng.shuffle(bodies)
    return bodies


def _post(handler: Any, body: dict[str, Any]) -> dict[str, Any]:
    event = build_event(
        method="POST",
        raw_path="/v1/sessions",
        route_key="POST /v1/sessions",
        headers=[("content-type", "application/json")],
        body=json.dumps(body).encode(),
    )
    response = http_response(handler(event, LambdaContext(function_name="SdkIngestFunction")))
    assert response.status == 201, response.body
    result: dict[str, Any] = json.loads(response.body)
    return result


def run(url: str, sessions: int, users: int, seed: int, offline_share: float) -> dict[str, float]:
    from functions import sdk_ingest

    bodies = workload(sessions, users, seed, offline_share)
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        users_table=f"bench-users-{suffix}",
        activity_table=f"bench-activity-{suffix}",
        dynamodb_endpoint_url=url,
    )
    client = create_local_tables(url, settings)

    # Baseline: one bare PutItem per session, same client, same server.
    started = time.perf_counter()
    for body in bodies:
        for item in body["sessions"]:
            client.put_item(
                TableName=settings.activity_table,
                Item={
                    "pk": {"S": f"baseline#{item['session_id']}"},
                    "sk": {"S": "s"},
                    "t": {"S": item["started_at"]},
                },
            )
    baseline_rate = sessions / (time.perf_counter() - started)

    store = Store(settings, client)
    runtime.install(
        runtime.Services(settings=settings, store=store, clock=lambda: parse_instant(NOW.isoformat()))
    )
    started = time.perf_counter()
    new = sum(_post(sdk_ingest.handler, body)["new_sessions"] for body in bodies)
    ingest_seconds = time.perf_counter() - started
    units_new = store.meter.billed_write_units
    reads_new = store.meter.reported_read_units
    failed_before = store.meter.failed_conditional_writes

    duplicates = sum(_post(sdk_ingest.handler, body)["duplicates"] for body in bodies)
    units_duplicates = store.meter.billed_write_units - units_new
    reads_duplicates = store.meter.reported_read_units - reads_new
    runtime.reset()
    for table in (settings.users_table, settings.activity_table):
        client.delete_table(TableName=table)
    return {
        "sessions": float(sessions),
        "requests": float(len(bodies)),
        "new_sessions": float(new),
        "duplicates": float(duplicates),
        "baseline_sessions_per_s": baseline_rate,
        "sessions_per_s": new / ingest_seconds,
        "units_per_new_session": units_new / new,
        "units_per_duplicate": units_duplicates / duplicates,
        "reads_per_new_session": reads_new / new,
        "reads_per_duplicate": reads_duplicates / duplicates,
        "conflicts_retried": float(failed_before),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_ingest", description=__doc__)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print("== ingest: POST /v1/sessions through the handler, on DynamoDB Local ==")
    with dynamodb_local() as url:
        for label, offline_share in (
            ("mixed: 40% offline batches of 2-20", 0.4),
            ("online only: one session per upload", 0.0),
        ):
            figures = run(url, args.sessions, args.users, args.seed, offline_share)
            print(
                f"-- {label}: {int(figures['sessions'])} sessions of {args.users} users in "
                f"{int(figures['requests'])} uploads, then every upload again"
            )
            report(figures)


def report(figures: dict[str, float]) -> None:
    print(f"baseline (bare PutItem per session): {figures['baseline_sessions_per_s']:8.0f} sessions/s")
    print(
        f"kudos handler:                       {figures['sessions_per_s']:8.0f} sessions/s"
        f"  ({figures['sessions_per_s'] / figures['baseline_sessions_per_s']:.2f}x baseline)"
    )
    print("write units (billed)        measured   floor   goal")
    print(
        f"  per new session            {figures['units_per_new_session']:6.2f}    1.00   <= {GOAL_UNITS_PER_NEW_SESSION}"
        f"   ({figures['units_per_new_session'] / 1.0:.2f}x floor)"
    )
    print(
        f"  per duplicate              {figures['units_per_duplicate']:6.2f}       -   <= {GOAL_UNITS_PER_DUPLICATE}"
    )
    print(f"  optimistic-concurrency retries during ingest: {int(figures['conflicts_retried'])}")
    # On demand a read unit costs a fifth of a write unit. DynamoDB Local reports nothing for a key
    # it does not find, which AWS bills like one it finds: the neighbouring-day look-up adds 2 keys
    # a session at 0.5 each (eventually consistent), 1 unit a session beside the figures below.
    print(
        f"read units (as reported): {figures['reads_per_new_session']:.2f} per new session, "
        f"{figures['reads_per_duplicate']:.2f} per duplicate; on AWS add about 1 for keys not found"
    )


if __name__ == "__main__":
    main()
