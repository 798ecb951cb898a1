"""Identify racing everything else that names the same device, on one DynamoDB Local table set.

Each round sends the same requests about a fresh device and user from several threads at once,
each thread with its own boto3 client and Store (as separate Lambda instances would). Whatever
the interleaving, the profiles, pointers and the day's figures must be those of the same requests
sent one after another in some order (a serial replay on the in-memory fake): no double merge, no
update stranded on an anonymous profile the identify already merged.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dsl import load_segments
from kudos.core.identity import UserKey
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import day_of, format_instant, parse_instant
from kudos.ingest.push import record_push_events, register_token
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from kudos.ingest.users import identify_users
from kudos.local.dynamodb import dynamodb_client
from kudos.store.dynamo import Store
from kudos.store.memory import MemoryStore
from kudos.store.ports import Storage
from tests.conftest import DynamoDB, fresh_tables

pytestmark = pytest.mark.ddblocal

SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)
SETTINGS = Settings()
START = parse_instant("2026-11-02T12:00:00Z")
ROUNDS = 12
# The ids every round renames: the serial replays use these.
DEVICE, USER = "dev", "usr"

Request = Callable[[Storage, float], Any]


def requests(device: str, user: str) -> list[tuple[str, Request]]:
    """One round: two identical identifies, two session uploads, a track, a token, push events."""

    def identify(store: Storage, now: float) -> Any:
        body = {"aliases_to_identify": [{"external_id": user, "device_id": device}]}
        return identify_users(store, SEGMENTS, now, body)

    def sessions(tag: str) -> Request:
        def upload(store: Storage, now: float) -> Any:
            sessions = [
                {
                    "session_id": f"{device}-{tag}{n}",
                    "device_id": device,
                    "started_at": format_instant(now - 3600 * (n + 1)),
                    "ended_at": format_instant(now - 3600 * (n + 1) + 600),
                    "platform": "ios",
                }
                for n in range(2)
            ]
            return ingest_sessions(store, SEGMENTS, SETTINGS, now, {"sessions": sessions})

        return upload

    def track(store: Storage, now: float) -> Any:
        events = [{"device_id": device, "name": "opened_app", "time": format_instant(now - 60)}] * 2
        return track_users(store, SEGMENTS, SETTINGS, now, {"events": events})

    def token(store: Storage, now: float) -> Any:
        body = {"device_id": device, "platform": "ios", "token": f"tok-{device}", "enabled": True}
        return register_token(store, SEGMENTS, now, body)

    def push_events(store: Storage, now: float) -> Any:
        event = {
            "type": "opened",
            "device_id": device,
            "campaign_id": "c-1",
            "time": format_instant(now - 30),
        }
        return record_push_events(store, SEGMENTS, SETTINGS, now, {"events": [event]})

    return [
        ("identify", identify),
        ("identify again", identify),
        ("sessions a", sessions("a")),
        ("sessions b", sessions("b")),
        ("track", track),
        ("token", token),
        ("push events", push_events),
    ]


def state(store: Storage, device: str, user: str, now: float) -> Any:
    """Everything about the round's device and user, ids renamed, versions and aids left out (an
    aid is random: only which profile the day's activity counts under matters)."""
    rename = {device: DEVICE, user: USER}

    def plain(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in rename.items():
                value = value.replace(old, new)
            return value
        if isinstance(value, dict):
            return tuple(sorted((plain(k), plain(v)) for k, v in value.items()))
        if isinstance(value, list | tuple | set | frozenset):
            return tuple(sorted(map(repr, map(plain, value))))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            fields.pop("version", None)
            fields.pop("aid", None)
            if "counted" in fields:  # hashes of the session ids, which differ by round: how many
                fields["counted"] = len(fields["counted"])
            return (type(value).__name__, plain(fields))
        return value

    keys = {"device": UserKey.of_device(device), "user": UserKey.of_user(user)}
    profiles = {name: store.users.load_user(key) for name, key in keys.items()}
    owner_of_aid = {
        records.activity.aid: name for name, records in profiles.items() if records.activity is not None
    }

    def who(aids: list[str]) -> tuple[str, ...]:
        return tuple(sorted(owner_of_aid.get(aid, "nobody") for aid in aids))

    day = store.activity.read_day(day_of(now))
    aliases = store.pointers.resolve_anonymous([keys["device"]])
    return {
        "profiles": {name: plain(records.records()) for name, records in profiles.items()},
        "alias": plain(str(aliases.get(keys["device"]))),
        "token owner": plain(str(store.pointers.device_owner(device))),
        "sessions": who(day.session_aids),
        "api active": who(day.api_aids),
        "new users": who(day.new_user_aids),
    }


@pytest.fixture(scope="module")
def serial_outcomes() -> list[Any]:
    """The state after every order of one round's requests, on the in-memory fake."""
    named = requests(DEVICE, USER)
    outcomes: list[Any] = []
    seen_orders: set[tuple[str, ...]] = set()
    for order in itertools.permutations(range(len(named))):
        # The two identifies are the same request: one order of them is enough.
        names = tuple(named[i][0].removesuffix(" again") for i in order)
        if names in seen_orders:
            continue
        seen_orders.add(names)
        store = MemoryStore()
        for index in order:
            named[index][1](store, START)
        outcome = state(store, DEVICE, USER, START)
        if outcome not in outcomes:
            outcomes.append(outcome)
    return outcomes


@pytest.fixture
def ddblocal(request: pytest.FixtureRequest) -> Iterator[DynamoDB]:
    yield from fresh_tables(request, "ddblocal")


def test_identify_races_end_as_some_serial_order(
    request: pytest.FixtureRequest, serial_outcomes: list[Any]
) -> None:
    workers = len(requests(DEVICE, USER))
    for round_ in range(ROUNDS):
        # One table set per round (the same instant every round, so one set of serial outcomes).
        tables = fresh_tables(request, "ddblocal")
        ddblocal = next(tables)
        stores = [
            Store(ddblocal.settings, dynamodb_client(ddblocal.endpoint_url, region=ddblocal.settings.region))
            for _ in range(workers)
        ]
        device, user = f"d{round_}x", f"u{round_}x"
        barrier = threading.Barrier(workers)
        failures: list[BaseException] = []

        def run(
            store: Storage,
            request: Request,
            barrier: threading.Barrier = barrier,
            failures: list[BaseException] = failures,
        ) -> None:
            try:
                barrier.wait()
                request(store, START)
            except BaseException as error:  # reported below, with the round
                failures.append(error)

        threads = [
            threading.Thread(target=run, args=(store, request))
            for store, (_, request) in zip(stores, requests(device, user), strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not failures, f"round {round_}: {failures!r}"
        outcome = state(stores[0], device, user, START)
        assert outcome in serial_outcomes, f"round {round_}: no serial order ends like this: {outcome}"
        next(tables, None)  # drops the round's tables
