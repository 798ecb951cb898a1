"""Ingest benchmark: sessions through the real handler into DynamoDB Local.

Prints sessions/s against baselines measured in the same run (one bare PutItem per session: the
least any design that stores sessions must do; one conditional PutItem per session: the least a
design that drops duplicates must do), timed interleaved over several rounds after a warm-up
round that also warms the JVM and the connections (bench/stats.py), each round on fresh tables.

Capacity units per new session and per duplicate, as DynamoDB bills them: write units as reported
plus what DynamoDB Local does not report (failed conditional writes and the 2x of transactions,
kudos.store.capacity); read units as reported plus what DynamoDB Local reports as free while AWS
bills it: a BatchGetItem key that is not found (0.5 unit eventually consistent, 1 strongly
consistent, as for a key found), and a Query that finds nothing (counted at the 0.5/1 minimum).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import stats
from bench.backends import dynamodb_endpoint
from kudos import runtime
from kudos.core.identity import UserKey
from kudos.core.profile import CustomValue
from kudos.core.records import AttributesRecord
from kudos.core.settings import Settings
from kudos.core.timeutil import parse_instant
from kudos.local.apigw import LambdaContext, build_event, http_response
from kudos.local.dynamodb import create_local_tables
from kudos.store.capacity import CapacityMeter
from kudos.store.dynamo import Store

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOAL_UNITS_PER_NEW_SESSION = 2.5
GOAL_UNITS_PER_DUPLICATE = 1.0
# The user whose cost must not grow with what they store (issue 10): 90 custom attributes of 1,000
# characters (a ~91 KB attributes item), a new app_version every BIG_RELEASE_EVERY sessions (every
# session reports platform and app_version; an unchanged report writes nothing).
BIG_USER = "u-big"
BIG_ATTRIBUTES = 90
BIG_ATTRIBUTE_LENGTH = 1_000
BIG_RELEASE_EVERY = 5


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


def big_user_workload(sessions: int, seed: int, release_every: int) -> list[dict[str, Any]]:
    """One session per upload, all of BIG_USER, each sent (and received) a minute after it ends, as
    an online SDK does; every ``release_every``-th session reports a new app_version (1: every
    session, the worst case)."""
    rng = random.Random(seed)
    starts = sorted(NOW - timedelta(seconds=rng.randrange(1, 29 * 86_400)) for _ in range(sessions))
    return [
        {
            "sent_at": (started + timedelta(minutes=6)).isoformat(),
            "sessions": [
                {
                    "session_id": f"big-{seed}-{index}",
                    "device_id": "d-big",
                    "user_id": BIG_USER,
                    "started_at": started.isoformat(),
                    "ended_at": (started + timedelta(minutes=5)).isoformat(),
                    "platform": "ios",
                    "app_version": f"5.{index // release_every}.0",
                }
            ],
        }
        for index, started in enumerate(starts)
    ]


def store_big_attributes(store: Store) -> None:
    """BIG_USER's custom attributes, stored before the sessions (their write is not counted)."""
    custom: dict[str, CustomValue] = {
        f"attribute_{index:03d}": "x" * BIG_ATTRIBUTE_LENGTH for index in range(BIG_ATTRIBUTES)
    }
    assert store.users.save(UserKey(BIG_USER, None), AttributesRecord(custom=custom))


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


class ReadAudit:
    """A boto3 client that counts the read units AWS bills and DynamoDB Local reports as zero.

    Store takes any client: this one passes every call through and, on BatchGetItem, counts the
    keys that came back neither found nor unprocessed; on a Query that found nothing and reported
    nothing, the minimum a Query costs.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.missing_key_units = 0.0
        self.empty_query_units = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    @property
    def units(self) -> float:
        return self.missing_key_units + self.empty_query_units

    def batch_get_item(self, **request: Any) -> Any:
        response = self._client.batch_get_item(**request)
        for table, wanted in request["RequestItems"].items():
            found = len(response.get("Responses", {}).get(table, []))
            unprocessed = len((response.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", []))
            missing = len(wanted["Keys"]) - found - unprocessed
            self.missing_key_units += missing * (1.0 if wanted.get("ConsistentRead") else 0.5)
        return response

    def query(self, **request: Any) -> Any:
        response = self._client.query(**request)
        reported = (response.get("ConsumedCapacity") or {}).get("CapacityUnits", 0.0)
        if not response.get("Items") and not reported:
            self.empty_query_units += 1.0 if request.get("ConsistentRead") else 0.5
        return response


@contextmanager
def _fresh_tables(url: str) -> Iterator[tuple[Settings, Any]]:
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        users_table=f"bench-users-{suffix}",
        activity_table=f"bench-activity-{suffix}",
        dynamodb_endpoint_url=url,
    )
    client = create_local_tables(url, settings)
    try:
        yield settings, client
    finally:
        for table in (settings.users_table, settings.activity_table):
            client.delete_table(TableName=table)


def _put_each(url: str, bodies: list[dict[str, Any]], *, conditional: bool) -> stats.Timed:
    """A baseline run: one PutItem per session, on fresh tables (their creation is not timed)."""
    with _fresh_tables(url) as (settings, client):
        condition = {"ConditionExpression": "attribute_not_exists(pk)"} if conditional else {}
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
                    **condition,
                )
        return stats.Timed(time.perf_counter() - started)


Prepare = Callable[[Store], None]


def _kudos_run(
    url: str, bodies: list[dict[str, Any]], sessions: int, prepare: Prepare | None = None
) -> dict[str, float]:
    """Every upload through the handler on fresh tables, then every upload again (duplicates)."""
    from functions import sdk_ingest

    with _fresh_tables(url) as (settings, client):
        audit = ReadAudit(client)
        store = Store(settings, audit)
        if prepare is not None:
            prepare(store)
            # What preparing cost is not the sessions' cost.
            store.tables.meter = CapacityMeter()
            audit.missing_key_units = audit.empty_query_units = 0.0
        # The server receives each upload the moment it is sent.
        received_at = parse_instant(NOW.isoformat())

        def post(body: dict[str, Any]) -> dict[str, Any]:
            nonlocal received_at
            received_at = parse_instant(body["sent_at"])
            return _post(sdk_ingest.handler, body)

        runtime.install(runtime.Services(settings=settings, store=store, clock=lambda: received_at))
        try:
            # Each upload is sent again right after it is answered, as a client that timed out
            # retries: on the server clock of the first, which never goes back.
            new = duplicates = 0
            new_seconds = duplicate_seconds = 0.0
            writes_new = reads_new = extra_new = missing_new = retries = 0.0
            for body in bodies:
                meter, before = store.meter, (audit.units, audit.missing_key_units)
                writes, reads = meter.billed_write_units, meter.reported_read_units
                failed = meter.failed_conditional_writes
                started = time.perf_counter()
                new += post(body)["new_sessions"]
                new_seconds += time.perf_counter() - started
                writes_new += meter.billed_write_units - writes
                reads_new += meter.reported_read_units - reads
                extra_new += audit.units - before[0]
                missing_new += audit.missing_key_units - before[1]
                retries += meter.failed_conditional_writes - failed
                started = time.perf_counter()
                duplicates += post(body)["duplicates"]
                duplicate_seconds += time.perf_counter() - started
        finally:
            runtime.reset()
    assert new == sessions, (new, sessions)
    assert duplicates == sessions, (duplicates, sessions)
    return {
        "new_seconds": new_seconds,
        "duplicate_seconds": duplicate_seconds,
        "wcu_new": writes_new / new,
        "rcu_new_reported": reads_new / new,
        "rcu_new_unreported": extra_new / new,
        "wcu_duplicate": (store.meter.billed_write_units - writes_new) / duplicates,
        "rcu_duplicate_reported": (store.meter.reported_read_units - reads_new) / duplicates,
        "rcu_duplicate_unreported": (audit.units - extra_new) / duplicates,
        "rcu_new_missing_keys": missing_new / new,
        "rcu_duplicate_missing_keys": (audit.missing_key_units - missing_new) / duplicates,
        "retries": float(retries),
    }


def run(
    url: str, bodies: list[dict[str, Any]], rounds: int, prepare: Prepare | None = None
) -> dict[str, Any]:
    sessions = sum(len(body["sessions"]) for body in bodies)
    kudos_runs: list[dict[str, float]] = []

    def kudos() -> stats.Timed:
        figures = _kudos_run(url, bodies, sessions, prepare)
        kudos_runs.append(figures)
        return stats.Timed(figures["new_seconds"])

    runs: dict[str, Callable[[], object]] = {
        "put": lambda: _put_each(url, bodies, conditional=False),
        "conditional put": lambda: _put_each(url, bodies, conditional=True),
        "kudos": kudos,
    }
    seconds = stats.interleave(runs, rounds=rounds)
    measured = kudos_runs[-rounds:]  # the warm-up run is not reported
    # Rounds run in alternating order: pair each kudos run's duplicates with its own round.
    duplicate_seconds = stats.Samples(tuple(figures["duplicate_seconds"] for figures in measured))
    units = {
        name: statistics.median(figures[name] for figures in measured)
        for name in measured[0]
        if name.startswith(("wcu", "rcu"))
    }
    return {
        "sessions": sessions,
        "seconds": seconds,
        "duplicate_seconds": duplicate_seconds,
        "units": units,
        "retries": max(figures["retries"] for figures in measured),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--release-every",
        type=int,
        default=BIG_RELEASE_EVERY,
        help="the big user reports a new app_version every this many sessions (1: every session)",
    )
    parser.add_argument("--endpoint-url", default=None, help="a running DynamoDB Local (else one is started)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    quick = args.quick or stats.quick_requested()
    sessions = args.sessions or (40 if quick else 400)
    users = args.users or max(2, sessions // 10)
    rounds = args.rounds or (1 if quick else 3)
    print(
        "== ingest: POST /v1/sessions through the handler, on DynamoDB Local; "
        f"median (min–max) of {rounds} interleaved rounds after a warm-up round, fresh tables each =="
    )
    with dynamodb_endpoint(args.endpoint_url) as url:
        for label, offline_share in (
            ("mixed: 40% offline batches of 2-20", 0.4),
            ("online only: one session per upload", 0.0),
        ):
            bodies = workload(sessions, users, args.seed, offline_share)
            figures = run(url, bodies, rounds)
            print(
                f"-- {label}: {sessions} sessions of {users} users in "
                f"{len(bodies)} uploads, then every upload again"
            )
            report(figures)
        big_sessions = max(10, sessions // 10)
        big_bodies = big_user_workload(big_sessions, args.seed, args.release_every)
        # The same user without the stored attributes: what storing them adds, if anything. Both
        # enter "New this week" at their second session and leave it a week later: two membership
        # changes (~8.5 write units each: the change and its log entry in one transaction, the
        # members and due indexes) that any user with this history makes.
        for prepare, stored in (
            (
                store_big_attributes,
                f"{BIG_ATTRIBUTES} custom attributes of {BIG_ATTRIBUTE_LENGTH:,} characters",
            ),
            (None, "the same user and sessions without those attributes"),
        ):
            figures = run(url, big_bodies, rounds, prepare)
            print(
                f"-- one big user: {stored}; {big_sessions} sessions one per upload as each ends, "
                f"a new app_version every {args.release_every}, then every upload again"
            )
            report(figures)


def report(figures: dict[str, Any]) -> None:
    sessions = figures["sessions"]
    seconds = figures["seconds"]
    put = seconds["put"]
    rows = [
        ("baseline: bare PutItem per session", put),
        ("baseline: conditional PutItem per session", seconds["conditional put"]),
        ("kudos handler, new sessions", seconds["kudos"]),
        ("kudos handler, duplicates", figures["duplicate_seconds"]),
    ]
    for label, samples in rows:
        ratio = stats.ratio(put, samples).show(digits=2, unit="x")  # rate ratio = inverse time ratio
        print(f"{label + ':':<44}{samples.rate(sessions).show():>22} sessions/s  {ratio} bare PutItem")
    units = figures["units"]
    print("capacity units (billed)      WCU  goal     RCU   (reported + unreported by DynamoDB Local)")
    for kind, goal in (("new", GOAL_UNITS_PER_NEW_SESSION), ("duplicate", GOAL_UNITS_PER_DUPLICATE)):
        wcu = units[f"wcu_{kind}"]
        reported, unreported = units[f"rcu_{kind}_reported"], units[f"rcu_{kind}_unreported"]
        print(
            f"  per {'new session' if kind == 'new' else 'duplicate':<22}{wcu:6.2f}  <= {goal:<4}"
            f"{reported + unreported:6.2f}   ({reported:.2f} + {unreported:.2f}, of which"
            f" {units[f'rcu_{kind}_missing_keys']:.2f} keys not found)  [WCU {'met' if wcu <= goal else 'MISSED'}]"
        )
    # On demand a read unit costs a fifth of a write unit: weigh RCU and WCU accordingly.
    print(
        f"  optimistic-concurrency retries during ingest (worst round): {int(figures['retries'])}; "
        "on demand a read unit costs 1/5 of a write unit"
    )


if __name__ == "__main__":
    main()
