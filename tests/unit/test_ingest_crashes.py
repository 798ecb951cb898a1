"""An ingest call that dies between any two of its writes, then is retried (the same request),
ends as one clean call does: the same sessions, profiles, pointers, new-user markers and
memberships. (The push-event log is the exception: a retried event may be logged twice.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from dsl import load_segments
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.core.timeutil import day_of, format_instant, parse_instant
from kudos.ingest.push import record_push_events, register_token
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from kudos.ingest.users import delete_users, identify_users
from kudos.store.memory import MemoryStore

SEGMENTS = load_segments(DEFAULT_SEGMENTS_DIR)
SETTINGS = Settings()
NOW = parse_instant("2026-11-22T12:00:00Z")
WRITES = {
    "users": ("save", "replace_user", "delete_record", "delete_user"),
    "pointers": ("put_alias", "delete_alias", "claim_device", "release_device"),
    "activity": (
        "insert_session",
        "update_session",
        "mark_api_active",
        "remove_api_active",
        "add_new_user",
        "remove_new_user",
        "put_push_event",
    ),
    "memberships": ("record_change", "mark_published"),
    "events": ("publish",),
}


class Crash(Exception):
    pass


def crash_after(store: MemoryStore, writes: int) -> Callable[[], int]:
    """Make the store raise Crash on its write number ``writes`` (0 = the first, -1 = never); the
    count so far."""
    count = 0
    for port_name, methods in WRITES.items():
        port = getattr(store, port_name)
        for method_name in methods:
            original = getattr(type(port), method_name).__get__(port)

            def counted(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
                nonlocal count
                count += 1
                if count - 1 == writes:
                    raise Crash
                return _original(*args, **kwargs)

            setattr(port, method_name, counted)
    return lambda: count


def sessions(*ids: str, device: str = "d-1", user: str | None = "u-1", hours_ago: int = 2) -> dict[str, Any]:
    items = []
    for n, session_id in enumerate(ids):
        item = {
            "session_id": session_id,
            "device_id": device,
            "started_at": format_instant(NOW - (hours_ago + n) * 3600),
            "ended_at": format_instant(NOW - (hours_ago + n) * 3600 + 300),
            "platform": "ios",
            "app_version": "2.0",
        }
        if user is not None:
            item["user_id"] = user
        items.append(item)
    return {"sessions": items}


Call = Callable[[MemoryStore], Any]


def upload(body: dict[str, Any]) -> Call:
    return lambda store: ingest_sessions(store, SEGMENTS, SETTINGS, NOW, body)


def track(body: dict[str, Any]) -> Call:
    return lambda store: track_users(store, SEGMENTS, SETTINGS, NOW, body)


def identify(user: str, device: str) -> Call:
    body = {"aliases_to_identify": [{"external_id": user, "device_id": device}]}
    return lambda store: identify_users(store, SEGMENTS, NOW, body)


def token(device: str, user: str | None = None) -> Call:
    body = {"device_id": device, "platform": "ios", "token": f"t-{device}", "enabled": True}
    if user is not None:
        body["user_id"] = user
    return lambda store: register_token(store, SEGMENTS, NOW, body)


def push_events(device: str) -> Call:
    event = {"type": "opened", "device_id": device, "campaign_id": "c-1", "time": format_instant(NOW - 60)}
    return lambda store: record_push_events(store, SEGMENTS, SETTINGS, NOW, {"events": [event]})


def delete(**arrays: list[Any]) -> Call:
    return lambda store: delete_users(store, NOW, arrays)


# What the store holds before the call: a known user with a merged device and a token, an
# anonymous device with sessions and events, a known user with an older first day.
SETUP: list[Call] = [
    upload(sessions("old-1", "old-2", hours_ago=30)),
    upload(sessions("anon-1", device="d-2", user=None)),
    track({"events": [{"device_id": "d-2", "name": "opened_app", "time": format_instant(NOW - 600)}]}),
    token("d-2"),
    upload(sessions("m-1", device="d-3", user=None)),
    identify("u-1", "d-3"),
    token("d-4", "u-1"),
]

CALLS: dict[str, Call] = {
    "sessions of a new user": upload(sessions("n-1", "n-2", "n-3", device="d-9", user="u-9")),
    "sessions of a new device": upload(sessions("n-1", "n-2", device="d-9", user=None)),
    "sessions of a known user": upload(sessions("k-1", "old-1", "k-2", hours_ago=1)),
    "late sessions move the first day": upload(sessions("late-1", "late-2", hours_ago=60)),
    "sessions of a merged device": upload(sessions("k-1", "k-2", device="d-3", user=None)),
    "track a known user": track(
        {
            "attributes": [{"external_id": "u-1", "favourite": "tea"}],
            "events": [{"external_id": "u-1", "name": "bought", "time": format_instant(NOW - 60)}],
        }
    ),
    "track a new user": track(
        {
            "attributes": [{"external_id": "u-8", "favourite": "tea"}],
            "events": [{"external_id": "u-8", "name": "bought", "time": format_instant(NOW - 60)}],
        }
    ),
    "track a new device": track(
        {"events": [{"device_id": "d-7", "name": "opened_app", "time": format_instant(NOW - 60)}]}
    ),
    "push token of a known user": token("d-5", "u-1"),
    "push token moves to another user": token("d-4", "u-2"),
    "push events of a device": push_events("d-2"),
    "identify an anonymous device": identify("u-2", "d-2"),
    "identify into a known user": identify("u-1", "d-2"),
    "delete a user": delete(external_ids=["u-1"]),
    "delete a device": delete(device_ids=["d-2"]),
}


def populated() -> MemoryStore:
    store = MemoryStore()
    for call in SETUP:
        call(store)
    return store


def state(store: MemoryStore) -> dict[str, Any]:
    """Everything stored, versions left out and each aid named by the profile it belongs to."""
    profiles = {records.key: records for records in _all_users(store)}
    aid_owner = {
        records.activity.aid: records.key.token
        for records in profiles.values()
        if records.activity is not None
    }

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            fields.pop("version", None)
            if "aid" in fields:
                fields["aid"] = aid_owner.get(fields["aid"], "nobody")
            fields.pop("counted", None)
            fields.pop("received", None)
            fields = {name: sorted(v.items()) if isinstance(v, dict) else v for name, v in fields.items()}
            return (type(value).__name__, repr(sorted(fields.items(), key=lambda item: item[0])))
        return value

    days = range(day_of(NOW) - 5, day_of(NOW) + 1)
    activity = store.activity
    return {
        "profiles": {key.token: sorted(map(repr, map(plain, r.records()))) for key, r in profiles.items()},
        "aliases": {key.token: to.token for key, to in store.pointers.aliases.items()},
        "owners": {device: to.token for device, to in store.pointers.owners.items()},
        "sessions": sorted(repr(plain(session)) for session in activity.sessions.values()),
        "api active": {
            day: sorted(aid_owner.get(aid, "nobody") for aid in activity.read_day(day).api_aids)
            for day in days
        },
        "new users": {
            day: sorted(aid_owner.get(aid, "nobody") for aid in activity.read_day(day).new_user_aids)
            for day in days
        },
        "push events": sorted(
            {repr((e.type, e.user, e.time, e.campaign_id)) for e in activity.push_events.values()}
        ),
        "members": {
            name: sorted(u.token for u in store.memberships.members(name, 1000, None)) for name in SEGMENTS
        },
    }


def _all_users(store: MemoryStore) -> list[Any]:
    return [store.users.load_user(key) for key in list(store.users.partitions)]


def clean(name: str) -> tuple[dict[str, Any], int]:
    store = populated()
    writes = crash_after(store, -1)
    CALLS[name](store)
    return state(store), writes()


CLEAN = {name: clean(name) for name in CALLS}
# Not repaired by a retry yet (see docs/data-model.md "Known limits").
# The crash points a retry does not repair yet (docs/data-model.md, "Known limits"): strict, so that
# a fix, or a new gap, shows.
GAPS = {
    ("late sessions move the first day", 4),
    *(("track a known user", at) for at in (1, 2, 3)),
    *(("track a new user", at) for at in (1, 2, 3, 4)),
    *(("track a new device", at) for at in (1, 2, 3)),
}
CASES = [
    pytest.param(
        name,
        at,
        marks=[pytest.mark.xfail(reason="not repaired yet", strict=True)] if (name, at) in GAPS else [],
    )
    for name, (_, writes) in CLEAN.items()
    for at in range(writes)
]


@pytest.mark.parametrize("name", CALLS)
def test_each_call_writes_something(name: str) -> None:
    assert CLEAN[name][1] >= 1


@pytest.mark.parametrize(("name", "crash_at"), CASES)
def test_a_retry_after_a_crash_between_any_two_writes_ends_as_one_clean_call(
    name: str, crash_at: int
) -> None:
    store = populated()
    crash_after(store, crash_at)
    with pytest.raises(Crash):
        CALLS[name](store)
    crash_after(store, -1)
    CALLS[name](store)  # the client's (or Lambda's) retry: the same request
    assert state(store) == CLEAN[name][0]
