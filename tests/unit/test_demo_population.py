"""The demo population: seeded, the archetype mix asked for, and traffic the API accepts as api.md says.

Bodies are checked against api.md's shapes here, written out independently of the API's own
models, so a generator bug cannot hide behind a validator it shares with the server.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from kudos.demo.population import (
    ARCHETYPE_MIX,
    DEFAULT_NOW,
    Archetype,
    Population,
    Request,
    generate,
)

DAY = 86_400.0
MAX_AGE = 30 * DAY  # api.md: at most 30 days before the receive time
MAX_FUTURE = 1 * DAY  # and 1 day after
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@pytest.fixture(scope="module")
def population() -> Population:
    return generate(300, seed=11)


def instant(text: str) -> float:
    assert RFC3339.match(text), f"not an RFC 3339 instant with a zone: {text!r}"
    return datetime.fromisoformat(text).timestamp()


def uploads(population: Population) -> list[Request]:
    return [r for r in population.requests if r.path == "/v1/sessions"]


def corrected_starts(request: Request) -> list[tuple[str, float]]:
    """(session_id, start on the server's clock) for every good session of an upload."""
    skew = request.received_at - instant(request.body["sent_at"])
    bad = {index for array, index in request.bad_items if array == "sessions"}
    return [
        (item["session_id"], instant(item["started_at"]) + skew)
        for index, item in enumerate(request.body["sessions"])
        if index not in bad
    ]


def test_same_seed_same_requests_other_seed_others() -> None:
    first, again, other = generate(120, seed=5), generate(120, seed=5), generate(120, seed=6)

    def dump(population: Population) -> str:
        return json.dumps([(r.path, r.received_at, r.body) for r in population.requests], sort_keys=True)

    assert dump(first) == dump(again)
    assert first.users == again.users
    assert dump(first) != dump(other)


def test_archetype_mix_is_the_configured_shares(population: Population) -> None:
    counts = population.archetype_counts()

    assert sum(counts.values()) == 300
    assert set(counts) == set(Archetype)
    for archetype, share in ARCHETYPE_MIX.items():
        assert abs(counts[archetype] - share * 300) < 1


def test_archetypes_behave_as_named(population: Population) -> None:
    days_active: dict[str, set[int]] = defaultdict(set)
    for session in population.sessions:
        days_active[session.device_id].add(int((session.started - population.start) // DAY))
    by_archetype: dict[Archetype, list[set[int]]] = defaultdict(list)
    for user in population.users:
        by_archetype[user.archetype].append(days_active[user.device_id])

    def mean_days(archetype: Archetype) -> float:
        return sum(len(days) for days in by_archetype[archetype]) / len(by_archetype[archetype])

    assert mean_days(Archetype.POWER) > mean_days(Archetype.REGULAR) > mean_days(Archetype.CASUAL)
    assert mean_days(Archetype.POWER) > 0.7 * population.days
    sessions_per_device = Counter(s.device_id for s in population.sessions)
    power = [u for u in population.users if u.archetype is Archetype.POWER]
    assert all(sessions_per_device[u.device_id] >= 2 * len(days_active[u.device_id]) for u in power)
    # Lapsed users stopped at least a week ago; new ones started within the last week.
    assert all(max(days) < population.days - 7 for days in by_archetype[Archetype.LAPSED])
    assert all(min(days) >= population.days - 8 for days in by_archetype[Archetype.NEW])
    assert all(u.user_id is None for u in population.users if u.archetype is Archetype.ANONYMOUS)


def test_requests_are_in_receive_order_within_the_period(population: Population) -> None:
    received = [r.received_at for r in population.requests]

    assert received == sorted(received)
    assert population.start <= received[0]
    assert received[-1] < DEFAULT_NOW.timestamp() == population.now
    assert datetime.fromtimestamp(population.start, UTC) == datetime(2026, 9, 24, tzinfo=UTC)


def test_every_body_has_the_shape_api_md_gives(population: Population) -> None:
    checks = {
        "/v1/sessions": check_sessions,
        "/v1/users/track": check_track,
        "/v1/users/identify": check_identify,
        "/v1/push/tokens": check_token,
    }
    seen_bad: list[tuple[str, int]] = []
    for request in population.requests:
        assert request.method == "POST"
        assert len(json.dumps(request.body).encode()) < 1_000_000
        checks[request.path](request.body, set(request.bad_items))
        seen_bad.extend(request.bad_items)

    # The two deliberate mistakes, and only those, break the shapes.
    assert sorted(array for array, _ in seen_bad) == ["purchases", "sessions"]


def check_sessions(body: dict[str, Any], bad: set[tuple[str, int]]) -> None:
    assert set(body) == {"sent_at", "sessions"}
    instant(body["sent_at"])
    assert 1 <= len(body["sessions"]) <= 500
    for index, item in enumerate(body["sessions"]):
        assert {"session_id", "device_id", "started_at"} <= set(item)
        assert set(item) <= {
            "session_id", "device_id", "user_id", "started_at", "ended_at",
            "platform", "app_version", "country", "language", "time_zone",
        }  # fmt: skip
        assert all(isinstance(value, str) and value for value in item.values())
        if ("sessions", index) in bad:
            assert not RFC3339.match(item["started_at"])
            continue
        if "ended_at" in item:
            assert instant(item["ended_at"]) >= instant(item["started_at"])
        if "platform" in item:
            assert item["platform"] in {"ios", "android", "web"}


def check_track(body: dict[str, Any], bad: set[tuple[str, int]]) -> None:
    assert body
    assert set(body) <= {"attributes", "events", "purchases"}
    for name, objects in body.items():
        assert 1 <= len(objects) <= 75
        for index, item in enumerate(objects):
            assert isinstance(item.get("external_id"), str)
            assert item["external_id"]
            if name == "events":
                assert item["name"] in {"added_to_cart", "level_completed"}
                instant(item["time"])
            elif name == "purchases":
                instant(item["time"])
                assert isinstance(item["price"], float | int)
                assert item["price"] >= 0
                assert item["product_id"]
                valid_currency = re.fullmatch(r"[A-Z]{3}", item["currency"]) is not None
                assert valid_currency is ((name, index) not in bad)
            else:
                if "push_subscribe" in item:
                    assert item["push_subscribe"] in {"opted_in", "subscribed", "unsubscribed"}
                if "tags" in item:
                    assert set(item["tags"]) <= {"add", "remove"}


def check_identify(body: dict[str, Any], bad: set[tuple[str, int]]) -> None:
    aliases = body["aliases_to_identify"]
    assert 1 <= len(aliases) <= 50
    assert all(set(alias) == {"device_id", "external_id"} for alias in aliases)


def check_token(body: dict[str, Any], bad: set[tuple[str, int]]) -> None:
    assert set(body) == {"device_id", "user_id", "platform", "token", "enabled"}
    assert body["platform"] in {"ios", "android", "web"}
    assert isinstance(body["enabled"], bool)


def test_every_upload_is_within_the_acceptance_window(population: Population) -> None:
    for request in uploads(population):
        for session_id, started in corrected_starts(request):
            assert request.received_at - MAX_AGE <= started <= request.received_at + MAX_FUTURE, session_id


def test_the_clock_correction_recovers_every_true_start(population: Population) -> None:
    truth = {s.session_id: s.started for s in population.sessions}
    first_seen: dict[str, float] = {}
    for request in uploads(population):
        if request.kind == "sessions":
            for session_id, started in corrected_starts(request):
                first_seen.setdefault(session_id, started)

    assert first_seen.keys() <= truth.keys()
    assert all(abs(first_seen[sid] - truth[sid]) < 0.002 for sid in first_seen)
    # Nearly all of history is uploaded by now; what is not is still cached on devices.
    assert len(first_seen) > 0.97 * len(truth)


def test_uploads_are_late_skewed_retried_and_near_midnight(population: Population) -> None:
    sessions = uploads(population)
    skewed = [r for r in sessions if abs(r.received_at - instant(r.body["sent_at"])) >= 3600]
    late_by_days = [
        r for r in sessions if any(r.received_at - started > 2 * DAY for _, started in corrected_starts(r))
    ]
    bodies = Counter(json.dumps(r.body, sort_keys=True) for r in sessions)
    retried = [r for r in sessions if r.kind == "sessions_retry"]
    batches_per_session: dict[str, set[str]] = defaultdict(set)
    for r in sessions:
        for sid, _ in corrected_starts(r):
            batches_per_session[sid].add(json.dumps(r.body, sort_keys=True))
    near_midnight = [
        started
        for r in sessions
        for _, started in corrected_starts(r)
        if min(started % DAY, DAY - started % DAY) < 20 * 60
    ]

    assert len(skewed) > 0.03 * len(sessions)
    assert len(late_by_days) > 0.005 * len(sessions)
    assert retried
    assert all(bodies[json.dumps(r.body, sort_keys=True)] == 2 for r in retried)
    # Besides identical retries, some sessions travel again in a later, different batch.
    assert sum(len(bodies) > 1 for bodies in batches_per_session.values()) > 20
    assert len(near_midnight) > 20


def test_anonymous_users_who_log_in_are_identified_before_anything_names_them(population: Population) -> None:
    converted = [u for u in population.users if u.archetype is Archetype.CONVERTED]
    assert converted
    assert all(u.login_at is not None and u.user_id for u in converted)
    for user in converted:
        login_at = user.login_at
        assert login_at is not None
        identify = [
            r
            for r in population.requests
            if r.path == "/v1/users/identify"
            and r.body["aliases_to_identify"] == [{"device_id": user.device_id, "external_id": user.user_id}]
        ]
        assert len(identify) == 1
        naming = [r for r in population.requests if f'"{user.user_id}"' in json.dumps(r.body)]
        assert min(r.received_at for r in naming) == identify[0].received_at
        device_sessions = [s for s in population.sessions if s.device_id == user.device_id]
        assert any(s.user_id is None for s in device_sessions)
        assert all((s.user_id is None) == (s.started < login_at) for s in device_sessions)


def test_backend_traffic_and_push_tokens(population: Population) -> None:
    track = [r.body for r in population.requests if r.path == "/v1/users/track"]
    events = Counter(e["name"] for body in track for e in body.get("events", []))
    attributes = [a for body in track for a in body.get("attributes", [])]
    purchases = [p for body in track for p in body.get("purchases", [])]
    identified = {u.user_id for u in population.users if u.user_id}
    tokens = {r.body["user_id"] for r in population.requests if r.path == "/v1/push/tokens"}

    assert events["added_to_cart"] > 0
    assert events["level_completed"] > 0
    assert purchases
    signups = [a for a in attributes if "first_name" in a]
    assert {a["external_id"] for a in signups} == identified
    assert all({"country", "language", "push_subscribe", "plan", "is_employee"} <= set(a) for a in signups)
    assert any("add" in a.get("tags", {}) for a in attributes)
    assert tokens <= identified
    assert len(tokens) > 0.7 * len(identified)


def test_a_user_s_life_does_not_depend_on_the_population_size() -> None:
    small, large = generate(40, seed=3), generate(80, seed=3)
    by_index = {u.index: u for u in large.users}

    same = [u for u in small.users if by_index[u.index].archetype is u.archetype]
    assert same
    assert all(by_index[u.index] == u for u in same)


@pytest.mark.parametrize(("users", "days"), [(0, 60), (10, 7)])
def test_sizes_below_the_minimum_are_refused(users: int, days: int) -> None:
    with pytest.raises(ValueError, match="at least"):
        generate(users, days=days)


@pytest.mark.parametrize("days", [8, 9, 12, 31, 90])
def test_any_period_from_the_minimum_up_has_every_archetype(days: int) -> None:
    population = generate(60, days=days, seed=2)

    assert set(population.archetype_counts()) == set(Archetype)
    assert all(population.start <= s.started and s.ended < population.now for s in population.sessions)
    for request in uploads(population):
        for _, started in corrected_starts(request):
            assert request.received_at - MAX_AGE <= started <= request.received_at + MAX_FUTURE
