"""A seeded, realistic app population, as the HTTP requests its devices and its backend send.

``generate()`` is pure: the same arguments give the same requests, byte for byte, and nothing is
sent anywhere. Each request carries the instant the server receives it; replaying them in that
order with the server clock pinned to it (``kudos demo``, benchmarks, tests) replays the app's
last ``days`` days.

What makes the traffic realistic is what makes ingest hard:
- user archetypes (``ARCHETYPE_MIX``): power, regular, casual, lapsed, new, anonymous, and
  anonymous users who later log in (``/v1/users/identify`` then merges the device's history);
- devices cache sessions and upload them in batches when online, days late after an offline
  spell; some clocks are hours off (every instant in an upload is device time, with ``sent_at``
  to correct it); some uploads are retried with the very same body, some sessions go twice
  because the device never learned its upload worked; some sessions start minutes from UTC
  midnight;
- the app's backend exports attributes, custom events and purchases to ``/v1/users/track`` in
  periodic batches; most devices of logged-in users register a push token.

In the last ten days, one upload and one backend export carry a deliberately malformed item
(``Request.bad_items``; tiny populations may lack one), to show that an item error costs only that item.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from kudos.ingest.sessions import SESSION_ATTRIBUTES

DEFAULT_NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# "Thousands of users" at the smallest: a user's 60 days are ~21 requests and ~110 DynamoDB calls,
# and on the embedded (moto) DynamoDB `make demo` replays 1000 users in about 4 minutes, then
# spends about 1 more reporting. `kudos demo --users N` trades size for time.
# `make demo` replays them in about 90 s on 2 cores (about 2,600 requests a minute on DynamoDB
# Local); `kudos demo --users N` for more.
DEFAULT_USERS = 250
DEFAULT_DAYS = 60
DEFAULT_SEED = 7
MIN_DAYS = 8  # new users joined in the last week

DAY = 86_400.0
HOUR = 3_600.0
MINUTE = 60.0
# The API rejects sessions that started more than 30 days before their upload (api.md); the SDK
# drops cached sessions well before that rather than send what would be refused.
SDK_MAX_CACHE_AGE = 25 * DAY
SDK_MAX_BATCH = 200  # sessions per upload; the API takes up to 500
TRACK_MAX_OBJECTS = 75  # per array, api.md
# The backend exports what it learned since its previous run every BACKEND_PERIOD.
BACKEND_PERIOD = 6 * HOUR

SESSIONS_PATH = "/v1/sessions"
TOKENS_PATH = "/v1/push/tokens"
TRACK_PATH = "/v1/users/track"
IDENTIFY_PATH = "/v1/users/identify"
# Session fields the profile keeps as "last value reported" (kudos.ingest.sessions.SESSION_ATTRIBUTES).
DEVICE_FIELDS = SESSION_ATTRIBUTES


class Archetype(StrEnum):
    POWER = "power"
    REGULAR = "regular"
    CASUAL = "casual"
    LAPSED = "lapsed"
    NEW = "new"
    ANONYMOUS = "anonymous"
    CONVERTED = "anonymous_then_login"


# Share of the population: a long tail of light and lapsed users, as in most apps.
ARCHETYPE_MIX: dict[Archetype, float] = {
    Archetype.POWER: 0.04,
    Archetype.REGULAR: 0.12,
    Archetype.CASUAL: 0.30,
    Archetype.LAPSED: 0.20,
    Archetype.NEW: 0.06,
    Archetype.ANONYMOUS: 0.18,
    Archetype.CONVERTED: 0.10,
}


@dataclass(frozen=True, slots=True)
class Behaviour:
    active_probability: float  # chance of using the app on a given day of its active life
    sessions_per_day: dict[int, float]  # sessions on an active day -> weight
    median_minutes: float
    cart_probability: float  # per logged-in session: an added_to_cart event
    logged_in: bool  # from the first session on


BEHAVIOURS: dict[Archetype, Behaviour] = {
    Archetype.POWER: Behaviour(0.92, {2: 0.35, 3: 0.35, 4: 0.2, 5: 0.1}, 11.0, 0.25, True),
    Archetype.REGULAR: Behaviour(0.6, {1: 0.6, 2: 0.3, 3: 0.1}, 7.0, 0.15, True),
    Archetype.CASUAL: Behaviour(0.3, {1: 0.85, 2: 0.15}, 5.0, 0.1, True),
    Archetype.LAPSED: Behaviour(0.5, {1: 0.75, 2: 0.25}, 5.0, 0.1, True),
    Archetype.NEW: Behaviour(0.75, {1: 0.5, 2: 0.35, 3: 0.15}, 6.0, 0.2, True),
    Archetype.ANONYMOUS: Behaviour(0.15, {1: 0.9, 2: 0.1}, 3.0, 0.0, False),
    # After logging in they use the app like regular users; before, like casual ones.
    Archetype.CONVERTED: Behaviour(0.55, {1: 0.6, 2: 0.3, 3: 0.1}, 7.0, 0.15, False),
}
BROWSING_PROBABILITY = 0.35  # anonymous_then_login, before logging in

# Local hour of day -> relative use: a morning bump, lunch, and the evening peak.
HOUR_WEIGHTS = (
    1.0, 0.5, 0.3, 0.2, 0.2, 0.4, 1.0, 2.5, 3.5, 3.0, 2.5, 2.5,
    3.5, 3.0, 2.5, 2.5, 3.0, 3.5, 4.5, 5.5, 6.0, 5.5, 4.0, 2.0,
)  # fmt: skip
NEAR_MIDNIGHT_SHARE = 0.03  # sessions placed within 20 minutes of UTC midnight


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    languages: tuple[str, ...]
    time_zone: str
    utc_offset_minutes: int  # fixed: the demo ignores daylight saving time
    currency: str
    weight: float


COUNTRIES = (
    Country("US", ("en", "es"), "America/New_York", -300, "USD", 0.24),
    Country("US", ("en",), "America/Los_Angeles", -480, "USD", 0.08),
    Country("GB", ("en",), "Europe/London", 0, "GBP", 0.09),
    Country("FR", ("fr",), "Europe/Paris", 60, "EUR", 0.10),
    Country("DE", ("de", "en"), "Europe/Berlin", 60, "EUR", 0.09),
    Country("ES", ("es",), "Europe/Madrid", 60, "EUR", 0.05),
    Country("BR", ("pt",), "America/Sao_Paulo", -180, "BRL", 0.09),
    Country("MX", ("es",), "America/Mexico_City", -360, "MXN", 0.05),
    Country("IN", ("en", "hi"), "Asia/Kolkata", 330, "INR", 0.10),
    Country("JP", ("ja",), "Asia/Tokyo", 540, "JPY", 0.06),
    Country("AU", ("en",), "Australia/Sydney", 600, "AUD", 0.05),
)
PLATFORMS = {"android": 0.5, "ios": 0.44, "web": 0.06}
# (version, release as a fraction of the period); each device installs updates some days late.
APP_VERSIONS = (("5.0.3", 0.0), ("5.1.0", 0.25), ("5.2.0", 0.65))
FIRST_NAMES = (
    "Ana", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Hugo", "Isha", "Jonas", "Kenji",
    "Lucia", "Mateo", "Nina", "Omar", "Priya", "Quentin", "Rosa", "Sam", "Tomas", "Uma", "Victor",
    "Wen", "Yuki", "Zoe",
)  # fmt: skip
PRODUCTS = (("sku-coffee", 4.5), ("sku-mug", 12.0), ("sku-beans-1kg", 24.0), ("sku-grinder", 89.0))
PRICE_FACTOR = {
    "USD": 1.0, "GBP": 0.8, "EUR": 0.92, "BRL": 5.0, "MXN": 17.0, "INR": 83.0, "JPY": 150.0, "AUD": 1.5,
}  # fmt: skip
TAGS = ("newsletter", "beta", "referral", "promo-autumn")


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as the server receives it."""

    method: str
    path: str
    body: dict[str, Any]
    received_at: float  # epoch seconds: the server clock while handling it
    kind: str  # sessions, sessions_retry, identify, push_token, track
    # Items the API must reject, as (array, index): the demo's deliberate mistakes.
    bad_items: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class DemoUser:
    index: int
    archetype: Archetype
    device_id: str
    user_id: str | None  # None: never logged in
    platform: str
    country: str
    language: str
    time_zone: str
    utc_offset_minutes: int
    clock_offset: float  # device clock minus true time, seconds
    join_day: int  # day index (0 = the period's first day) of the first session
    login_at: float | None  # anonymous_then_login: when the user logged in


@dataclass(frozen=True, slots=True)
class TrueSession:
    """A session as it really happened (true UTC instants), whether or not it was uploaded."""

    session_id: str
    device_id: str
    user_id: str | None  # as the device knew it then: None before login
    started: float
    ended: float


@dataclass(frozen=True, slots=True)
class Population:
    seed: int
    now: float
    days: int
    start: float  # midnight UTC of the first day
    users: tuple[DemoUser, ...]
    sessions: tuple[TrueSession, ...]
    requests: tuple[Request, ...]  # in the order the server receives them

    def archetype_counts(self) -> Counter[Archetype]:
        return Counter(user.archetype for user in self.users)


def generate(
    users: int = DEFAULT_USERS,
    *,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    now: datetime = DEFAULT_NOW,
) -> Population:
    """The population's requests over the ``days`` UTC days ending at ``now`` (today included)."""
    if users < 1:
        raise ValueError("users: at least 1")
    if days < MIN_DAYS:
        raise ValueError(f"days: at least {MIN_DAYS} (new users joined in the last week)")
    now_s = now.astimezone(UTC).timestamp()
    start = (now_s // DAY - (days - 1)) * DAY
    world = _World(now=now_s, days=days, start=start)
    people = []
    for index, archetype in enumerate(_archetypes(users, random.Random(seed))):
        # One generator per user: a user's life does not depend on how many others there are.
        rng = random.Random(f"kudos-demo/{seed}/{index}")
        user, sessions = _live(world, index, archetype, rng)
        people.append(user)
        world.sessions.extend(sessions)
        _device_traffic(world, user, sessions, rng)
        _backend_knowledge(world, user, sessions, rng)
    _add_malformed_items(world, people)
    _backend_exports(world)
    ordered = sorted(world.requests, key=lambda pair: (pair[1].received_at, pair[0]))
    return Population(
        seed=seed,
        now=now_s,
        days=days,
        start=start,
        users=tuple(people),
        sessions=tuple(sorted(world.sessions, key=lambda s: (s.started, s.session_id))),
        requests=tuple(request for _, request in ordered),
    )


@dataclass
class _BackendItem:
    ready_at: float  # when the backend knows it; exported at its next run
    array: str  # attributes, events, purchases
    item: dict[str, Any]
    bad: bool = False


@dataclass
class _World:
    now: float
    days: int
    start: float
    sessions: list[TrueSession] = field(default_factory=list)
    # (creation order, request): the order breaks ties between requests received at one instant.
    requests: list[tuple[int, Request]] = field(default_factory=list)
    backend: list[_BackendItem] = field(default_factory=list)
    uploads: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # device -> positions

    def add(self, request: Request) -> int:
        self.requests.append((len(self.requests), request))
        return len(self.requests) - 1

    def day_start(self, day: int) -> float:
        return self.start + day * DAY


def _archetypes(users: int, rng: random.Random) -> list[Archetype]:
    """Exactly the mix's shares (largest remainder), in a seeded random order."""
    exact = {archetype: share * users for archetype, share in ARCHETYPE_MIX.items()}
    counts = {archetype: int(value) for archetype, value in exact.items()}
    order = list(ARCHETYPE_MIX)
    by_remainder = sorted(exact, key=lambda a: (counts[a] - exact[a], order.index(a)))
    for archetype in by_remainder[: users - sum(counts.values())]:
        counts[archetype] += 1
    population = [archetype for archetype, count in counts.items() for _ in range(count)]
    rng.shuffle(population)
    return population


def _pick(rng: random.Random, weights: dict[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _live(
    world: _World, index: int, archetype: Archetype, rng: random.Random
) -> tuple[DemoUser, list[TrueSession]]:
    """Who the user is, and every session they had."""
    behaviour = BEHAVIOURS[archetype]
    country = rng.choices(COUNTRIES, weights=[c.weight for c in COUNTRIES])[0]
    join_day, last_day = _lifetime(archetype, world.days, rng)
    login_day = (
        min(join_day + rng.randint(1, 14), world.days - 2) if archetype is Archetype.CONVERTED else None
    )
    device_id = f"d-{rng.getrandbits(48):012x}"
    user_id = f"u-{index + 1:05d}" if archetype is not Archetype.ANONYMOUS else None
    weekend_boost = 1.3 if archetype in (Archetype.CASUAL, Archetype.ANONYMOUS) else 1.0

    sessions: list[TrueSession] = []
    login_at: float | None = None
    for day in range(join_day, last_day + 1):
        probability = behaviour.active_probability
        if login_day is not None and day < login_day:
            probability = BROWSING_PROBABILITY
        if datetime.fromtimestamp(world.day_start(day), UTC).weekday() >= 5:
            probability = min(1.0, probability * weekend_boost)
        if day not in (join_day, login_day) and rng.random() >= probability:
            continue
        count = _pick(rng, behaviour.sessions_per_day)
        for started, ended in _day_sessions(world, day, count, country, behaviour, rng, sessions):
            if login_day is not None and login_at is None and day >= login_day:
                login_at = started  # logs in on opening the app that day
            known = user_id if behaviour.logged_in or (login_at is not None and started >= login_at) else None
            sessions.append(TrueSession(f"{rng.getrandbits(64):016x}", device_id, known, started, ended))
    user = DemoUser(
        index=index,
        archetype=archetype,
        device_id=device_id,
        user_id=user_id if behaviour.logged_in or login_at is not None else None,
        platform=_pick(rng, PLATFORMS),
        country=country.code,
        language=rng.choice(country.languages),
        time_zone=country.time_zone,
        utc_offset_minutes=country.utc_offset_minutes,
        clock_offset=_clock_offset(rng),
        join_day=join_day,
        login_at=login_at,
    )
    return user, sessions


def _lifetime(archetype: Archetype, days: int, rng: random.Random) -> tuple[int, int]:
    """The first and last day (indexes) the user may be active."""
    if archetype is Archetype.NEW:
        return days - rng.randint(2, 7), days - 1
    if archetype is Archetype.LAPSED:
        # Gone for at least the last week.
        last_possible = days - MIN_DAYS
        join = 0 if rng.random() < 0.6 else _day_after_start(rng, min(days // 3, last_possible))
        return join, min(last_possible, join + rng.randint(5, max(5, days * 2 // 5)))
    if archetype is Archetype.CONVERTED:
        return (0 if rng.random() < 0.4 else _day_after_start(rng, days - 10)), days - 1
    # Established users were there from the start; the others signed up along the way.
    return (0 if rng.random() < 0.65 else _day_after_start(rng, days - MIN_DAYS)), days - 1


def _day_after_start(rng: random.Random, last: int) -> int:
    """A day in 1..last, or the first day when the period is too short for that."""
    return rng.randint(1, last) if last >= 1 else 0


def _clock_offset(rng: random.Random) -> float:
    """Device clock error: most are synced, some minutes off, a few hours off (set by hand, wrong zone)."""
    roll = rng.random()
    if roll < 0.86:
        return round(rng.gauss(0.0, 1.5), 3)
    sign = rng.choice((-1, 1))
    if roll < 0.92:
        return sign * round(rng.uniform(3 * MINUTE, 50 * MINUTE), 3)
    return sign * round(rng.uniform(1 * HOUR, 14 * HOUR), 3)


def _day_sessions(
    world: _World,
    day: int,
    count: int,
    country: Country,
    behaviour: Behaviour,
    rng: random.Random,
    earlier: list[TrueSession],
) -> Iterator[tuple[float, float]]:
    """``count`` sessions on the user's local day ``day``, after the earlier ones, before now."""
    starts = []
    for _ in range(count):
        if rng.random() < NEAR_MIDNIGHT_SHARE:
            # Around UTC midnight, where a clock correction or a retry could move a session a day.
            moment = world.day_start(day) + rng.choice((-1, 1)) * rng.randint(5, 1200)
        else:
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            moment = (
                world.day_start(day)
                + hour * HOUR
                + rng.randint(0, 3599)
                - country.utc_offset_minutes * MINUTE
            )
        starts.append(float(moment))
    previous_end = earlier[-1].ended if earlier else world.start
    for planned in sorted(starts):
        started = max(planned, previous_end + rng.randint(60, 1800))
        if started % DAY == 0:
            started += 1  # never exactly midnight: float rounding must not decide the day
        minutes = min(90.0, max(0.5, rng.lognormvariate(0.0, 0.8) * behaviour.median_minutes))
        ended = started + round(minutes * MINUTE)
        if started < world.start or ended >= world.now:
            continue  # before the period, or still going on now
        previous_end = ended
        yield started, ended


@dataclass(frozen=True, slots=True)
class _Device:
    flush_interval: float
    offline: tuple[tuple[float, float], ...]  # spells without a connection, [start, end), sorted

    def online_at(self, moment: float) -> float:
        """The first instant from ``moment`` on when the device has a connection."""
        for start, end in self.offline:  # sorted by start, so overlapping spells chain
            if start <= moment < end:
                moment = end + 37.0
        return moment


RETRY_PROBABILITY = 0.03  # the response was lost: the same body again, seconds later
LOST_ACK_PROBABILITY = 0.015  # the SDK never learned the upload worked: sent again next time


def _device(world: _World, rng: random.Random) -> _Device:
    # How long the SDK batches before uploading: the app's setting, or the OS deferring work.
    interval = _pick(rng, {1 * HOUR: 0.1, 6 * HOUR: 0.2, 20 * HOUR: 0.45, 48 * HOUR: 0.25})
    spells = []
    if rng.random() < 0.22:  # travel, no data plan: days without a connection
        for _ in range(rng.randint(1, 2)):
            begin = world.start + round(rng.uniform(0, world.days - 3) * DAY)
            spells.append((begin, begin + round(rng.uniform(2, 9) * DAY)))
    return _Device(interval, tuple(sorted(spells)))


def _device_traffic(world: _World, user: DemoUser, sessions: list[TrueSession], rng: random.Random) -> None:
    """What the app on the user's device sends: cached session batches and retries, its push token."""
    device = _device(world, rng)
    cache: list[TrueSession] = []
    last_upload = -float("inf")
    reported: dict[str, str] = {}  # device fields as last accepted by the server

    def due() -> float:
        return device.online_at(max(last_upload + device.flush_interval, cache[0].ended))

    def upload(at: float) -> None:
        nonlocal cache, last_upload
        ready = [s for s in cache if s.ended <= at and s.started >= at - SDK_MAX_CACHE_AGE]
        waiting = [s for s in cache if s.ended > at]
        last_upload = at
        for offset in range(0, len(ready), SDK_MAX_BATCH):
            batch = ready[offset : offset + SDK_MAX_BATCH]
            items = [_session_json(user, s) for s in batch]
            # The SDK attaches the device's fields to the newest session, and only when they changed
            # since its last upload: the profile keeps the latest values, and nothing is resent.
            fields = _device_fields(world, user, batch[-1].started)
            if fields != reported:
                items[-1].update(fields)
                reported.update(fields)
            body = {"sent_at": _device_time(user, at), "sessions": items}
            world.uploads[user.device_id].append(
                world.add(Request("POST", SESSIONS_PATH, body, at, "sessions"))
            )
            if rng.random() < RETRY_PROBABILITY:
                retry_at = at + rng.randint(20, 120)
                world.add(Request("POST", SESSIONS_PATH, body, retry_at, "sessions_retry"))
            elif rng.random() < LOST_ACK_PROBABILITY:
                waiting = batch + waiting
        cache = waiting

    for session in sessions:
        while cache and due() <= session.started:
            upload(due())
        cache.append(session)
    while cache and due() <= world.now:
        upload(due())

    if user.login_at is not None and user.user_id is not None:
        # The backend hears of the login at once and merges the device's anonymous history into
        # the user, before anything else names the user (the token, the backend's exports).
        alias = {"aliases_to_identify": [{"device_id": user.device_id, "external_id": user.user_id}]}
        world.add(Request("POST", IDENTIFY_PATH, alias, user.login_at + 2, "identify"))
    _push_token(world, user, sessions, rng)


def _push_token(world: _World, user: DemoUser, sessions: list[TrueSession], rng: random.Random) -> None:
    """Most users who log in let the app register for push, right after their first logged-in start."""
    first = next((s.started for s in sessions if s.user_id is not None), None)
    if user.user_id is None or first is None or rng.random() >= 0.82 or first + 4 >= world.now:
        return
    token = f"{rng.getrandbits(256):064x}" if user.platform == "ios" else f"fcm-{rng.getrandbits(160):040x}"
    body = {
        "device_id": user.device_id,
        "user_id": user.user_id,
        "platform": user.platform,
        "token": token,
        "enabled": rng.random() < 0.88,
    }
    world.add(Request("POST", TOKENS_PATH, body, first + 4, "push_token"))


def _backend_knowledge(
    world: _World, user: DemoUser, sessions: list[TrueSession], rng: random.Random
) -> None:
    """What the app's backend learns about a logged-in user, for its next export to /v1/users/track."""
    logged_in = [s for s in sessions if s.user_id is not None]
    if user.user_id is None or not logged_in:
        return
    behaviour = BEHAVIOURS[user.archetype]
    currency = next(c.currency for c in COUNTRIES if c.time_zone == user.time_zone)
    signup = logged_in[0].started
    name = rng.choice(FIRST_NAMES)
    attributes: dict[str, Any] = {
        "external_id": user.user_id,
        "first_name": name,
        "email": f"{name.lower()}.{user.index + 1}@example.com",
        "country": user.country,
        "language": user.language,
        "push_subscribe": "opted_in" if rng.random() < 0.8 else "unsubscribed",
        "plan": "gold" if rng.random() < 0.04 else "free",
        "is_employee": rng.random() < 0.01,
        "signed_up_at": _utc(signup),
    }
    tags = [tag for tag in TAGS if rng.random() < 0.2]
    if tags:
        attributes["tags"] = {"add": tags}
    world.backend.append(_BackendItem(signup + 10, "attributes", attributes))

    player = rng.random() < 0.3
    level = 0
    upgraded = attributes["plan"] == "gold"
    for session in logged_in:
        span = session.ended - session.started
        if rng.random() < behaviour.cart_probability:
            product, base = rng.choice(PRODUCTS)
            price = round(base * PRICE_FACTOR[currency], 2)
            moment = session.started + round(span * rng.uniform(0.2, 0.8))
            world.backend.append(
                _BackendItem(
                    moment,
                    "events",
                    {
                        "external_id": user.user_id,
                        "name": "added_to_cart",
                        "time": _utc(moment),
                        "properties": {"product_id": product, "price": price},
                    },
                )
            )
            if rng.random() < 0.4:
                bought = moment + rng.randint(20, 240)
                purchase = {
                    "external_id": user.user_id,
                    "product_id": product,
                    "currency": currency,
                    "price": price,
                    "quantity": rng.choice((1, 1, 1, 2)),
                    "time": _utc(bought),
                }
                world.backend.append(_BackendItem(bought, "purchases", purchase))
        if player and rng.random() < 0.3:
            level += 1
            moment = session.started + round(span * rng.uniform(0.5, 1.0))
            world.backend.append(
                _BackendItem(
                    moment,
                    "events",
                    {
                        "external_id": user.user_id,
                        "name": "level_completed",
                        "time": _utc(moment),
                        "properties": {"level": level},
                    },
                )
            )
        if not upgraded and rng.random() < 0.006:
            upgraded = True
            change = {"external_id": user.user_id, "plan": "gold", "tags": {"add": ["upgraded"]}}
            world.backend.append(_BackendItem(session.ended, "attributes", change))


def _backend_exports(world: _World) -> None:
    """The backend's periodic exports: everything it learned since its previous run."""
    by_run: dict[float, list[_BackendItem]] = defaultdict(list)
    for item in world.backend:
        by_run[(item.ready_at // BACKEND_PERIOD + 1) * BACKEND_PERIOD + 5 * MINUTE].append(item)
    for at, items in sorted(by_run.items()):
        if at >= world.now:
            continue  # not exported yet
        arrays: dict[str, list[_BackendItem]] = defaultdict(list)
        for item in items:
            arrays[item.array].append(item)
        for chunk in range(0, max(len(v) for v in arrays.values()), TRACK_MAX_OBJECTS):
            body: dict[str, Any] = {}
            bad: list[tuple[str, int]] = []
            for name in ("attributes", "events", "purchases"):
                part = arrays.get(name, [])[chunk : chunk + TRACK_MAX_OBJECTS]
                if part:
                    body[name] = [item.item for item in part]
                    bad.extend((name, index) for index, item in enumerate(part) if item.bad)
            world.add(Request("POST", TRACK_PATH, body, at, "track", tuple(bad)))


def _add_malformed_items(world: _World, users: list[DemoUser]) -> None:
    """Two deliberate mistakes in the last ten days: a session without a time zone, a bad currency."""
    late = world.start + (world.days - 10) * DAY
    for user in users:
        positions = [p for p in world.uploads[user.device_id] if world.requests[p][1].received_at >= late]
        if user.archetype is not Archetype.REGULAR or not positions:
            continue
        order, request = world.requests[positions[0]]
        ghost = dict(request.body["sessions"][0])
        ghost["session_id"] += "-x"
        ghost["started_at"] = ghost["started_at"][:19]  # a build that formatted times by hand
        ghost.pop("ended_at", None)
        sessions = [*request.body["sessions"], ghost]
        body = {**request.body, "sessions": sessions}
        bad = (("sessions", len(sessions) - 1),)
        world.requests[positions[0]] = (
            order,
            Request(request.method, request.path, body, request.received_at, request.kind, bad),
        )
        break
    for item in world.backend:
        if item.array == "purchases" and item.ready_at >= late:
            wrong = {**item.item, "currency": "EURO"}  # not an ISO 4217 code
            world.backend.append(_BackendItem(item.ready_at, "purchases", wrong, bad=True))
            break


def _session_json(user: DemoUser, session: TrueSession) -> dict[str, Any]:
    """A session as the SDK writes it: instants on the device clock, in the device's zone."""
    item: dict[str, Any] = {
        "session_id": session.session_id,
        "device_id": session.device_id,
        "started_at": _device_time(user, session.started),
        "ended_at": _device_time(user, session.ended),
    }
    if session.user_id is not None:
        item["user_id"] = session.user_id
    return item


def _device_fields(world: _World, user: DemoUser, moment: float) -> dict[str, str]:
    version = APP_VERSIONS[0][0]
    lag = (user.index * 7919 % 11) * DAY  # the same few days' delay for every update of a device
    for name, release in APP_VERSIONS:
        if moment >= world.start + release * world.days * DAY + lag:
            version = name
    values = (user.platform, version, user.country, user.language, user.time_zone)
    return dict(zip(DEVICE_FIELDS, values, strict=True))


def _device_time(user: DemoUser, moment: float) -> str:
    """How the device writes the true instant ``moment``: with its clock error, in its zone."""
    zone = UTC if user.platform == "web" else timezone(timedelta(minutes=user.utc_offset_minutes))
    return _rfc3339(datetime.fromtimestamp(moment + user.clock_offset, zone))


def _utc(moment: float) -> str:
    return _rfc3339(datetime.fromtimestamp(moment, UTC))


def _rfc3339(moment: datetime) -> str:
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")
