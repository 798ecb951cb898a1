"""Sweep benchmark: a steady sweep against a full re-evaluation on DynamoDB Local; the raw Scan decoder.

1. Steady against full, on (a) the demo population replayed through the handlers (as ``kudos demo``)
   and (b) a table of random users built directly (records, their memberships and due instants
   as a full sweep at the start would leave them). Each is loaded into two identical tables: every
   round, the steady side runs ``sweep_due`` over the next 15 minutes on one, and the full side
   ``sweep_everyone`` at the same instant on the other, so both move through the same time and each
   round is a steady-state sweep of its own. Read units as reported by DynamoDB Local, plus what it
   reports as free while AWS bills it (a Query that finds nothing, bench_ingest.ReadAudit).
2. Decoding Scan pages, from the same responses: one Scan of table (b) recorded as HTTP bodies, then
   replayed to a real boto3 client (bench/replay.py) that either parses them with botocore (what
   ``client.scan`` does) or decodes them raw (kudos/store/fast_scan.py). Per core: one thread.
3. 10 million users, by arithmetic from (b): workers (Scan TotalSegments) for a full sweep under 5
   minutes, and what the full sweep's reads cost on demand.
"""

from __future__ import annotations

import argparse
import math
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench import stats
from bench.backends import dynamodb_endpoint
from bench.bench_ingest import ReadAudit
from bench.bench_segments import NOW, load_table, random_user, record_scan
from bench.replay import Recorded, replaying_client
from dsl import SegmentSet, load_segments
from kudos.core.records import DueRecord, MembershipRecord, UserRecords
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.local.dynamodb import create_local_tables
from kudos.segments.sweep import sweep_due, sweep_everyone
from kudos.store.codec import Item, decode, encode
from kudos.store.dynamo import Store
from kudos.store.fast_scan import raw_scan
from kudos.store.keys import user_of_pk

STEP = 15 * 60.0  # the scheduled sweep's period
GOAL_DECODE_SPEEDUP = 3.0
TEN_MILLION = 10_000_000
DEADLINE_SECONDS = 5 * 60
# DynamoDB on-demand, us-east-1: $0.125 per million read request units (the price since the
# 2024-11-01 cut, as listed on aws.amazon.com/dynamodb/pricing/on-demand in 2025).
PRICE_PER_MILLION_READ_UNITS = 0.125
PRICE_NOTE = "$0.125 per million read request units (on-demand, us-east-1, price since 2024-11-01)"


# --- 2. decoding --------------------------------------------------------------------------------


def _pages_as_botocore(client: Any, table: str, pages: int) -> int:
    return sum(len(client.scan(TableName=table)["Items"]) for _ in range(pages))


def _pages_raw(client: Any, table: str, pages: int) -> int:
    return sum(len(raw_scan(client, TableName=table)["Items"]) for _ in range(pages))


def _users_of(store: Store) -> int:
    return sum(1 for _ in store.users.scan_users())


def bench_decoding(recorded: list[Recorded], table: str, users: int, rounds: int) -> stats.Samples:
    items = sum(body.count(b'"pk":') for body in (page.body for page in recorded))
    boto_client, _ = replaying_client(recorded)
    raw_client, _ = replaying_client(recorded)
    pages = len(recorded)
    assert _pages_as_botocore(boto_client, table, pages) == _pages_raw(raw_client, table, pages)
    seconds = stats.interleave(
        {
            "botocore": lambda: _pages_as_botocore(boto_client, table, pages),
            "raw": lambda: _pages_raw(raw_client, table, pages),
        },
        rounds=rounds,
    )
    settings = Settings(users_table=table, activity_table="unused")
    boto_store = Store(settings, replaying_client(recorded)[0])
    boto_store.users.raw_scan = False
    raw_store = Store(settings, replaying_client(recorded)[0])
    assert _users_of(boto_store) == _users_of(raw_store) == users
    whole = stats.interleave(
        {"botocore": lambda: _users_of(boto_store), "raw": lambda: _users_of(raw_store)}, rounds=rounds
    )
    speedup = stats.ratio(seconds["botocore"], seconds["raw"])
    print(f"-- 2. decoding the same {pages} recorded Scan pages ({items:,} items, {users:,} users), one core")
    print(
        f"   boto3 client.scan (botocore parser): {seconds['botocore'].per(items).show(1e6, 2)} µs per item; "
        f"raw (json.loads): {seconds['raw'].per(items).show(1e6, 2)} µs per item"
    )
    verdict = "meets" if speedup.median >= GOAL_DECODE_SPEEDUP else "MISSES"
    print(
        f"   raw Scan path speedup: {speedup.show(digits=1, unit='x')} "
        f"({verdict} the goal of {GOAL_DECODE_SPEEDUP:.0f}x)"
    )
    print(
        f"   scan_users + codec, raw vs botocore pages: "
        f"{stats.ratio(whole['botocore'], whole['raw']).show(digits=1, unit='x')} faster "
        f"({whole['raw'].rate(users).show()} users/s)"
    )
    return speedup


# --- 1. steady against full ---------------------------------------------------------------------


@contextmanager
def fresh_tables(url: str, name: str) -> Iterator[Settings]:
    """Tables of their own on DynamoDB Local for one round, deleted after it."""
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        users_table=f"bench-{name}-users-{suffix}",
        activity_table=f"bench-{name}-activity-{suffix}",
        dynamodb_endpoint_url=url,
    )
    client = create_local_tables(url, settings)
    try:
        yield settings
    finally:
        for table in (settings.users_table, settings.activity_table):
            client.delete_table(TableName=table)


def swept_users(users: list[list[Item]], segments: SegmentSet, at: float) -> list[list[Item]]:
    """Each user's items with the memberships and due instant a full sweep at ``at`` would store."""
    result = []
    for items in users:
        key = user_of_pk(items[0]["pk"]["S"])
        records = UserRecords(key)
        for item in items:
            records.add(decode(item))
        decided, due = segments.forecast_all(records.to_profile(), at)
        extra: list[Any] = [
            MembershipRecord(name, segments[name].version, at) for name, member in decided.items() if member
        ]
        if due is not None:
            extra.append(DueRecord(due))
        result.append(items + [encode(key, record) for record in extra])
    return result


def copy_table(source: Store, target: Store) -> int:
    """Every item of source's users table into target's (a raw Scan, batched writes)."""
    items: list[Item] = []
    request = {"TableName": source.settings.users_table}
    for page in source.tables.pages(lambda **r: raw_scan(source.client, **r), request):
        items.extend(page)
    target.tables.batch_write(target.settings.users_table, [{"PutRequest": {"Item": i}} for i in items])
    return len(items)


def steady_against_full(
    steady_store: Store, audit: ReadAudit, full_store: Store, segments: SegmentSet, start: float, rounds: int
) -> dict[str, Any]:
    """Interleaved rounds: sweep_due over the next 15 minutes on one table, sweep_everyone at the
    same instant on its twin. Time, read units and users read per round (the warm-up dropped)."""
    clock = {"steady": start, "full": start}
    units: dict[str, list[float]] = {"steady": [], "full": []}
    read: dict[str, list[int]] = {"steady": [], "full": []}
    cpu: dict[str, list[float]] = {"steady": [], "full": []}

    def steady() -> None:
        before = steady_store.meter.reported_read_units + audit.units
        started = time.process_time()
        since, clock["steady"] = clock["steady"], clock["steady"] + STEP
        result = sweep_due(steady_store, segments, since, clock["steady"])
        cpu["steady"].append(time.process_time() - started)
        units["steady"].append(steady_store.meter.reported_read_units + audit.units - before)
        read["steady"].append(result.users_read)

    def full() -> None:
        before = full_store.meter.reported_read_units
        started = time.process_time()
        clock["full"] += STEP
        result = sweep_everyone(full_store, segments, clock["full"])
        cpu["full"].append(time.process_time() - started)
        units["full"].append(full_store.meter.reported_read_units - before)
        read["full"].append(result.users_read)

    seconds = stats.interleave({"steady": steady, "full": full}, rounds=rounds)
    # Then a whole day of steady sweeps on the steady table (due instants cluster where rules flip,
    # at midnight for day-based rules: one 15-minute window in 96 holds most of a day's work).
    before = steady_store.meter.reported_read_units + audit.units
    started = time.perf_counter()
    day_read = 0
    for _ in range(24 * 3600 // int(STEP)):
        since, clock["steady"] = clock["steady"], clock["steady"] + STEP
        day_read += sweep_due(steady_store, segments, since, clock["steady"]).users_read
    day = {
        "seconds": time.perf_counter() - started,
        "units": steady_store.meter.reported_read_units + audit.units - before,
        "users_read": day_read,
    }
    return {
        "day": day,
        "seconds": seconds,
        "units": {side: stats.Samples(tuple(values[1:])) for side, values in units.items()},
        "users_read": {side: stats.Samples(tuple(map(float, values[1:]))) for side, values in read.items()},
        "cpu": {side: stats.Samples(tuple(values[1:])) for side, values in cpu.items()},
    }


def _twin_stores(url: str, steady: Settings, full: Settings) -> tuple[Store, ReadAudit, Store]:
    audit = ReadAudit(create_local_tables(url, steady))
    return Store(steady, audit), audit, Store(full, create_local_tables(url, full))


def report_pair(title: str, users: int, figures: dict[str, Any]) -> None:
    seconds, units, read = figures["seconds"], figures["units"], figures["users_read"]
    print(f"   {title}: {users:,} users; per sweep, median (min–max) over the rounds")
    print(
        f"     steady sweep_due (15 min): {seconds['steady'].show(1e3, 0)} ms, "
        f"{units['steady'].show(digits=1)} read units, {read['steady'].show()} users read"
    )
    print(
        f"     full sweep_everyone:       {seconds['full'].show(1e3, 0)} ms, "
        f"{units['full'].show(digits=1)} read units, {read['full'].show()} users read"
    )
    print(
        f"     full / steady: time {stats.ratio(seconds['full'], seconds['steady']).show(digits=1, unit='x')}, "
        f"read units {stats.ratio(units['full'], _nonzero(units['steady'])).show(digits=1, unit='x')}"
    )
    day, sweeps = figures["day"], 24 * 3600 // int(STEP)
    print(
        f"     a day of {sweeps} steady sweeps (1 run): {day['seconds']:.1f} s, {day['units']:,.1f} read units, "
        f"{day['users_read']:,} users read; per sweep on average {day['seconds'] / sweeps * 1e3:,.0f} ms, "
        f"{day['units'] / sweeps:,.1f} read units"
    )
    print(
        f"     one full sweep / average steady sweep: time "
        f"{seconds['full'].median / (day['seconds'] / sweeps):,.1f}x, read units "
        f"{units['full'].median / max(day['units'] / sweeps, 0.5):,.1f}x; one full sweep / a whole day of "
        f"steady ones: read units {units['full'].median / max(day['units'], 0.5):,.2f}x"
    )


def _nonzero(samples: stats.Samples) -> stats.Samples:
    return stats.Samples(tuple(max(value, 0.5) for value in samples.values))


def demo_pair(url: str, users: int, days: int, segments: SegmentSet, rounds: int) -> dict[str, Any]:
    from kudos import runtime
    from kudos.demo.population import generate
    from kudos.demo.run import DemoApi
    from kudos.local.environment import local_runtime
    from kudos.local.routes import find_template, load_template

    population = generate(users, days=days)
    template = load_template(find_template())
    with fresh_tables(url, "demo-steady") as steady, fresh_tables(url, "demo-full") as full:
        started = time.perf_counter()
        with local_runtime(
            endpoint_url=url, settings=steady, template_environment=template.globals_environment
        ) as handler_settings:
            api = DemoApi(template, handler_settings, Store(handler_settings))
            for request in population.requests:
                api.request(request.method, request.path, request.body, at=request.received_at)
        runtime.reset()
        steady_store, audit, full_store = _twin_stores(url, steady, full)
        # The previous sweep: a full one at the population's "now"; then the twin gets a copy.
        stored = sweep_everyone(steady_store, segments, population.now).users_read
        items = copy_table(steady_store, full_store)
        print(
            f"   (demo: {len(population.requests):,} requests replayed through the handlers, "
            f"{stored:,} users, {items:,} items, in {time.perf_counter() - started:.0f} s)"
        )
        figures = steady_against_full(steady_store, audit, full_store, segments, population.now, rounds)
    figures["users"] = stored
    return figures


def random_pair(url: str, users: int, segments: SegmentSet, rounds: int, seed: int) -> dict[str, Any]:
    import random

    rng = random.Random(seed)
    table = swept_users([random_user(rng, index) for index in range(users)], segments, NOW)
    with fresh_tables(url, "steady") as steady, fresh_tables(url, "full") as full:
        started = time.perf_counter()
        steady_store, audit, full_store = _twin_stores(url, steady, full)
        for store in (steady_store, full_store):
            load_table(store.client, store.settings.users_table, table)
        print(f"   (random: {users:,} users loaded twice in {time.perf_counter() - started:.0f} s)")
        figures = steady_against_full(steady_store, audit, full_store, segments, NOW, rounds)
        figures["recorded"] = [
            Recorded(page["status_code"], page["headers"], page["body"])
            for page in record_scan(full_store.client, full.users_table)
        ]
        figures["table"] = full.users_table
    figures["users"] = users
    return figures


# --- 3. ten million -----------------------------------------------------------------------------


def ten_million(figures: dict[str, Any]) -> None:
    users = figures["users"]
    full_seconds, full_cpu = figures["seconds"]["full"], figures["cpu"]["full"]
    wall_rate = users / full_seconds.median  # a worker's users/s, DynamoDB Local on the same cores
    cpu_rate = users / full_cpu.median  # users per CPU second of the sweeping process alone
    workers_wall = math.ceil(TEN_MILLION / (wall_rate * DEADLINE_SECONDS))
    workers_cpu = math.ceil(TEN_MILLION / (cpu_rate * DEADLINE_SECONDS))
    units_per_user = figures["units"]["full"].median / users
    full_units = units_per_user * TEN_MILLION
    print(f"-- 3. ten million users, by arithmetic from the {users:,}-user table (linear in users)")
    print(
        f"   a full-sweep worker re-evaluates {wall_rate:,.0f} users/s (wall, DynamoDB Local on the same "
        f"cores) to {cpu_rate:,.0f} users/s (its own CPU only)"
    )
    print(
        f"   workers (Scan TotalSegments) for 10M in under {DEADLINE_SECONDS // 60} min: "
        f"{workers_wall} (wall rate) to {workers_cpu} (CPU-bound rate)"
    )
    print(
        f"   full sweep of 10M: {full_units / 1e6:,.2f} M read units ({units_per_user:.3f} per user), "
        f"${full_units / 1e6 * PRICE_PER_MILLION_READ_UNITS:,.2f} at {PRICE_NOTE}; "
        f"{full_units / DEADLINE_SECONDS:,.0f} read units/s over {DEADLINE_SECONDS // 60} min"
    )
    steady_day = figures["day"]["units"] / users * TEN_MILLION
    print(
        f"   a day of steady 15-minute sweeps of 10M: {steady_day / 1e6:,.2f} M read units "
        f"(${steady_day / 1e6 * PRICE_PER_MILLION_READ_UNITS:,.2f}), against "
        f"${full_units / 1e6 * PRICE_PER_MILLION_READ_UNITS * 96:,.2f} for 96 full sweeps"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=None, help="random users in table (b)")
    parser.add_argument("--demo-users", type=int, default=None, help="demo population size (a)")
    parser.add_argument("--demo-days", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--endpoint-url", default=None, help="a running DynamoDB Local (else one is started)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    quick = args.quick or stats.quick_requested()
    users = args.users or (200 if quick else 10_000)
    demo_users = args.demo_users or (12 if quick else 100)
    demo_days = args.demo_days or (10 if quick else 30)
    rounds = args.rounds or (2 if quick else 3)
    segments = load_segments(DEFAULT_SEGMENTS_DIR)
    print(
        f"== segment sweep, steady against full: {len(segments)} segments; "
        f"median (min–max) of {rounds} interleaved rounds after a warm-up round =="
    )
    with dynamodb_endpoint(args.endpoint_url) as url:
        print("-- 1. steady sweep (due index, 15 minutes) against full re-evaluation (Scan), DynamoDB Local")
        demo = demo_pair(url, demo_users, demo_days, segments, rounds)
        report_pair("(a) demo population", demo["users"], demo)
        table = random_pair(url, users, segments, rounds, args.seed)
        report_pair("(b) random users", users, table)
    bench_decoding(table["recorded"], table["table"], users, rounds)
    ten_million(table)
