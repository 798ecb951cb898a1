"""What rules mean (dsl.md, Semantics), field by field and operator by operator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from dsl import EvalContext, compile_sources, random_bucket
from kudos.core.profile import AttributeInstant, CampaignHistory, DailyCounts, EventStats, Profile
from kudos.core.timeutil import parse_instant
from tests.dsl.support import AT, AT_DAY, DAY, holds, make_profile

Setter = Callable[[Profile, object], None]


def _attribute(name: str) -> Setter:
    def set_attribute(profile: Profile, value: object) -> None:
        setattr(profile, name, value)

    return set_attribute


def _user_id(profile: Profile, value: object) -> None:
    profile.user_id = value  # type: ignore[assignment]
    profile.device_id = None if value is not None else "device-1"


def _standard(name: str) -> Setter:
    def set_standard(profile: Profile, value: object) -> None:
        if value is not None:
            profile.standard[name] = value  # type: ignore[assignment]

    return set_standard


def _total(name: str) -> Setter:
    def set_total(profile: Profile, value: object) -> None:
        setattr(profile, name, DailyCounts(total=value))  # type: ignore[arg-type]

    return set_total


def _event_total(profile: Profile, value: object) -> None:
    profile.events["signup"] = EventStats(counts=DailyCounts(total=value))  # type: ignore[arg-type]


def _event_instant(which: str) -> Setter:
    def set_event_instant(profile: Profile, value: object) -> None:
        if value is not None:
            profile.events["signup"] = EventStats(**{which: value})  # type: ignore[arg-type]

    return set_event_instant


def _campaign(flag: str) -> Setter:
    def set_campaign(profile: Profile, value: object) -> None:
        profile.campaigns["welcome"] = CampaignHistory(**{flag: value})  # type: ignore[arg-type]

    return set_campaign


def _last_received(profile: Profile, value: object) -> None:
    if value is not None:
        profile.campaigns["welcome"] = CampaignHistory(received=True, last_received=value)  # type: ignore[arg-type]


def _last_opened(profile: Profile, value: object) -> None:
    if value is not None:
        profile.campaigns["welcome"] = CampaignHistory(opened=True, last_opened=value)  # type: ignore[arg-type]


def _today(name: str) -> Setter:
    """A count of `value` pushes today (inside every window)."""

    def set_today(profile: Profile, value: object) -> None:
        setattr(profile, name, DailyCounts(total=value, by_day={AT_DAY: value}))  # type: ignore[arg-type,dict-item]

    return set_today


def _campaign_today(series: str) -> Setter:
    """A push of "welcome" received (or opened) today when `value` is true, none ever when false."""

    def set_campaign_today(profile: Profile, value: object) -> None:
        counts = DailyCounts(total=1, by_day={AT_DAY: 1}) if value else DailyCounts()
        profile.campaigns["welcome"] = CampaignHistory(**{series: counts})  # type: ignore[arg-type]

    return set_campaign_today


@dataclass(frozen=True)
class FieldCase:
    text: str  # how a rule names the field
    kind: str  # string, number, bool, instant
    set_value: Setter


FIELD_CASES = [
    FieldCase("user_id", "string", _user_id),
    *(
        FieldCase(name, "string", _standard(name))
        for name in (
            "country",
            "language",
            "time_zone",
            "platform",
            "app_version",
            "first_name",
            "last_name",
            "email",
        )
    ),
    FieldCase("push_subscription", "string", _attribute("push_subscription")),
    FieldCase("email_subscription", "string", _attribute("email_subscription")),
    FieldCase("sessions", "number", _total("sessions")),
    FieldCase("purchases", "number", _total("purchases")),
    FieldCase("spent", "number", _attribute("spent_total")),
    FieldCase('events("signup")', "number", _event_total),
    FieldCase("push_enabled", "bool", _attribute("push_enabled")),
    FieldCase('received("welcome")', "bool", _campaign("received")),
    FieldCase('opened("welcome")', "bool", _campaign("opened")),
    FieldCase('converted("welcome")', "bool", _campaign("converted")),
    FieldCase('in_control("welcome")', "bool", _campaign("in_control")),
    FieldCase('received("welcome", last 7 days)', "bool", _campaign_today("receives")),
    FieldCase('opened("welcome", last 30 days)', "bool", _campaign_today("opens")),
    FieldCase("pushes_received(last 7 days)", "number", _today("pushes_received")),
    FieldCase("pushes_opened(last 30 days)", "number", _today("pushes_opened")),
    FieldCase("created_at", "instant", _attribute("created_at")),
    FieldCase("first_session", "instant", _attribute("first_session")),
    FieldCase("last_session", "instant", _attribute("last_session")),
    FieldCase("first_purchase", "instant", _attribute("first_purchase")),
    FieldCase("last_purchase", "instant", _attribute("last_purchase")),
    FieldCase("push_opted_in_at", "instant", _attribute("push_opted_in_at")),
    FieldCase("push_unsubscribed_at", "instant", _attribute("push_unsubscribed_at")),
    FieldCase('first_event("signup")', "instant", _event_instant("first")),
    FieldCase('last_event("signup")', "instant", _event_instant("last")),
    FieldCase('last_received("welcome")', "instant", _last_received),
    FieldCase("last_received_any", "instant", _attribute("last_received_any")),
    FieldCase('last_opened("welcome")', "instant", _last_opened),
    FieldCase("last_opened_any", "instant", _attribute("last_opened_any")),
]

WEEK_AGO = AT - 7 * DAY
MIDNIGHT = float(AT_DAY * DAY)  # the start of AT's day: what the date literal 2026-11-20 means

# (operator and literal, value the field holds (None: unset), expected result)
OPERATOR_CASES: dict[str, list[tuple[str, object, bool]]] = {
    "string": [
        ('= "m"', "m", True),
        ('= "m"', "M", False),  # case-sensitive
        ('= "m"', None, False),
        ('!= "m"', "m", False),
        ('!= "m"', "n", True),
        ('!= "m"', None, True),
        ('< "m"', "a", True),
        ('< "m"', "m", False),
        ('< "m"', None, False),
        ('<= "m"', "m", True),
        ('<= "m"', "z", False),
        ('<= "m"', None, False),
        ('> "m"', "z", True),
        ('> "m"', "m", False),
        ('> "m"', None, False),
        ('>= "m"', "m", True),
        ('>= "m"', "a", False),
        ('>= "m"', None, False),
        ('in ["m", "x"]', "x", True),
        ('in ["m", "x"]', "y", False),
        ('in ["m", "x"]', None, False),
        ("in []", "m", False),
        ('not in ["m", "x"]', "x", False),
        ('not in ["m", "x"]', "y", True),
        ('not in ["m", "x"]', None, True),
        ('contains "ar"', "mars", True),
        ('contains "ar"', "MARS", False),
        ('contains "ar"', None, False),
        ('matches "^ma"', "mars", True),
        ('matches "ar"', "mars", True),  # a search, anywhere in the string
        ('matches "^ma"', "Mars", False),
        ('matches "^ma"', None, False),
        ('matches "^\\d+$"', "2024", True),
        ("is set", "m", True),
        ("is set", None, False),
        ("is not set", None, True),
        ("is not set", "m", False),
    ],
    "number": [
        ("= 5", 5, True),
        ("= 5", 4, False),
        ("= 5.0", 5, True),  # integers and decimals compare together
        ("= 0", 0, True),  # counts are never unset: nothing recorded is 0
        ("!= 5", 5, False),
        ("!= 5", 6, True),
        ("< 5", 4, True),
        ("< 5", 5, False),
        ("<= 5", 5, True),
        ("<= 5", 6, False),
        ("> 5", 6, True),
        ("> 5", 5, False),
        ("> 4.5", 5, True),
        (">= 5", 5, True),
        (">= 5", 4, False),
        ("in [1, 5]", 5, True),
        ("in [1, 5]", 2, False),
        ("not in [1, 5]", 5, False),
        ("not in [1, 5]", 2, True),
        ("is set", 0, True),
        ("is not set", 0, False),
    ],
    "bool": [
        ("= true", True, True),
        ("= true", False, False),
        ("= false", False, True),
        ("!= true", False, True),
        ("!= true", True, False),
        ("in [true]", True, True),
        ("in [true]", False, False),
        ("not in [true]", False, True),
        ("", True, True),  # bare: `= true`
        ("", False, False),
        ("is set", False, True),
    ],
    "instant": [
        (">= 7 days ago", WEEK_AGO, True),
        (">= 7 days ago", WEEK_AGO - 1, False),
        (">= 7 days ago", None, False),
        ("> 7 days ago", WEEK_AGO, False),
        ("> 7 days ago", WEEK_AGO + 1, True),
        ("< 7 days ago", WEEK_AGO - 1, True),
        ("< 7 days ago", WEEK_AGO, False),
        ("< 7 days ago", None, False),
        ("<= 1 week ago", WEEK_AGO, True),
        ("<= 1 week ago", WEEK_AGO + 0.5, False),
        ("= now", AT, True),
        ("= now", AT - 1, False),
        ("= now", None, False),
        ("!= now", AT, False),
        ("!= now", None, True),
        (">= 30 minutes ago", AT - 1800, True),
        (">= 30 minutes ago", AT - 1801, False),
        ("< 2 hours ago", AT - 7201, True),
        ("<= 3 hours from now", AT + 3 * 3600, True),
        ("<= 3 hours from now", AT + 3 * 3600 + 1, False),
        (">= 1 minute from now", AT + 59, False),
        (">= 2026-11-20", MIDNIGHT, True),  # a date is midnight UTC
        (">= 2026-11-20", MIDNIGHT - 0.001, False),
        ("< 2026-11-20T15:30:00Z", AT - 1, True),
        ("< 2026-11-20T15:30:00Z", AT, False),
        ("= 2026-11-20T16:30:00+01:00", AT, True),
        ("= 2026-11-20T15:30:00.250Z", AT + 0.25, True),
        ("in [2026-11-20, now]", AT, True),
        ("in [2026-11-20, now]", MIDNIGHT, True),
        ("in [2026-11-20, now]", AT - 1, False),
        ("in [1 day ago]", AT - DAY, True),
        ("in [2026-11-20T16:30:00+01:00]", AT, True),
        ("in [now]", None, False),
        ("not in [2026-11-20, now]", AT, False),
        ("not in [2026-11-20, 1 hour ago]", AT, True),
        ("not in [now]", None, True),
        ("is set", AT, True),
        ("is set", None, False),
        ("is not set", None, True),
        ("is not set", AT, False),
    ],
}

TABLE = [
    pytest.param(field, clause, value, expected, id=f"{field.text} {clause or '(bare)'} | {value!r}")
    for field in FIELD_CASES
    for clause, value, expected in OPERATOR_CASES[field.kind]
    # A count or a flag is never unset: the "unset" rows do not apply to them.
    if not (value is None and field.kind in ("number", "bool"))
]


@pytest.mark.parametrize(("field", "clause", "value", "expected"), TABLE)
def test_field_operator_table(field: FieldCase, clause: str, value: object, expected: bool) -> None:
    profile = make_profile()
    field.set_value(profile, value)
    assert holds(f"{field.text} {clause}".strip(), profile) is expected


def test_every_built_in_field_is_in_the_table() -> None:
    from dsl.fields import FIELDS

    covered = {case.text.split("(")[0] for case in FIELD_CASES}
    # random_bucket and in_segment are computed, not stored: they have tests of their own below.
    assert set(FIELDS) - covered == {"random_bucket", "anonymous", "in_segment"}


def test_anonymous() -> None:
    assert holds("anonymous", Profile(user_id=None, device_id="d-1"))
    assert not holds("anonymous = true", make_profile())
    assert holds("anonymous = false and user_id is set", make_profile())
    assert holds("user_id is not set", Profile(user_id=None, device_id="d-1"))


def test_counts_with_nothing_recorded_are_zero() -> None:
    empty = make_profile()
    for clause in (
        "sessions = 0",
        "sessions(last 30 days) = 0",
        'events("never") = 0',
        'events("never", last 7 days) = 0',
        "purchases(last 2 weeks) = 0",
        "spent = 0",
        "spent(last 90 days) = 0",
        'received("never") = false',
        'last_received("never") is not set',
        'received("never", last 90 days) = false',
        'opened("never", last 1 day) = false',
        'last_opened("never") is not set',
        "last_opened_any is not set",
        "pushes_received(last 7 days) = 0",
        "pushes_opened(last 30 days) = 0",
    ):
        assert holds(clause, empty), clause


# --- windows ------------------------------------------------------------------------------------


def _days_ago(*offsets: int) -> DailyCounts:
    """One count on each of these days before AT's day (0 = AT's day, -1 = tomorrow)."""
    return DailyCounts(total=len(offsets), by_day={AT_DAY - offset: 1 for offset in offsets})


@pytest.mark.parametrize(
    ("window", "days_ago", "expected"),
    [
        ("last 1 day", 0, 1),  # today so far
        ("last 1 day", 1, 0),
        ("last 1 days", 0, 1),
        ("last 7 days", 6, 1),  # today and the 6 days before
        ("last 7 days", 7, 0),
        ("last 30 days", 29, 1),
        ("last 30 days", 30, 0),
        ("last 90 days", 89, 1),
        ("last 90 days", 90, 0),
        ("last 1 week", 6, 1),
        ("last 1 week", 7, 0),
        ("last 2 weeks", 13, 1),
        ("last 2 weeks", 14, 0),
        ("last 12 weeks", 83, 1),
        ("last 12 weeks", 84, 0),
        ("last 7 days", -1, 0),  # stored data after the day of `at` is outside every window
    ],
)
def test_window_edges(window: str, days_ago: int, expected: int) -> None:
    counts = _days_ago(days_ago)
    profile = make_profile(sessions=counts, purchases=counts)
    profile.events["opened_app"] = EventStats(counts=counts)
    profile.spent_by_day = {AT_DAY - days_ago: 9.5}
    assert holds(f"sessions({window}) = {expected}", profile)
    assert holds(f"purchases({window}) = {expected}", profile)
    assert holds(f'events("opened_app", {window}) = {expected}', profile)
    assert holds(f"spent({window}) = {9.5 * expected}", profile)
    profile.pushes_received = profile.pushes_opened = counts
    profile.campaigns["welcome"] = CampaignHistory(received=True, opened=True, receives=counts, opens=counts)
    assert holds(f"pushes_received({window}) = {expected}", profile)
    assert holds(f"pushes_opened({window}) = {expected}", profile)
    flag = "true" if expected else "false"
    assert holds(f'received("welcome", {window}) = {flag}', profile)
    assert holds(f'opened("welcome", {window}) = {flag}', profile)


def test_window_sums_every_day_inside() -> None:
    profile = make_profile(sessions=DailyCounts(total=10, by_day={AT_DAY: 2, AT_DAY - 3: 5, AT_DAY - 40: 3}))
    assert holds("sessions(last 7 days) = 7 and sessions(last 60 days) = 10 and sessions = 10", profile)


def test_messaging_history_windows() -> None:
    """The two rules of issue 9: "opened a push in the last 30 days", "at most 2 pushes this week"."""
    profile = make_profile(
        pushes_received=DailyCounts(total=4, by_day={AT_DAY: 1, AT_DAY - 3: 1, AT_DAY - 10: 2}),
        pushes_opened=DailyCounts(total=1, by_day={AT_DAY - 29: 1}),
    )
    profile.campaigns["welcome"] = CampaignHistory(
        received=True,
        opened=True,
        last_received=AT - 3 * DAY,
        last_opened=AT - 29 * DAY,
        receives=DailyCounts(total=2, by_day={AT_DAY - 3: 1, AT_DAY - 10: 1}),
        opens=DailyCounts(total=1, by_day={AT_DAY - 29: 1}),
    )
    assert holds("pushes_opened(last 30 days) >= 1 and pushes_received(last 7 days) <= 2", profile)
    assert not holds("pushes_opened(last 30 days) >= 1", profile, at=AT + DAY)
    assert holds("pushes_received(last 14 days) = 4 and pushes_received(last 1 day) = 1", profile)
    assert holds('received("welcome", last 7 days) and opened("welcome", last 7 days) = false', profile)
    assert holds('opened("welcome", last 30 days) and not opened("welcome", last 29 days)', profile)
    assert holds('last_opened("welcome") < 4 weeks ago and last_received("welcome") >= 3 days ago', profile)
    # Bare windowed flags are `= true`, and a day with a count of 0 received nothing.
    profile.campaigns["welcome"].receives = DailyCounts(total=0, by_day={AT_DAY: 0})
    assert not holds('received("welcome", last 7 days)', profile)
    assert holds('received("welcome") and received("welcome", last 7 days) = false', profile)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (MIDNIGHT, 1),  # the first instant of a day belongs to it
        (MIDNIGHT + DAY - 0.001, 1),  # and so does its last millisecond
        (MIDNIGHT - 0.001, 0),  # a moment earlier is the day before, when today's count is future
        (MIDNIGHT + DAY, 1),  # tomorrow: today is still within last 2 days
    ],
)
def test_window_follows_the_utc_day_of_at(at: float, expected: int) -> None:
    profile = make_profile(sessions=_days_ago(0))
    assert holds(f"sessions(last 2 days) = {expected}", profile, at=at)


def test_relative_times_are_exact_instants_from_at() -> None:
    profile = make_profile(last_session=AT - 7 * DAY)
    assert holds("last_session >= 7 days ago", profile, at=AT)
    assert not holds("last_session >= 7 days ago", profile, at=AT + 0.001)


# --- custom attributes --------------------------------------------------------------------------

SEEN = AT - 7 * DAY


@pytest.mark.parametrize(
    ("clause", "value", "expected"),
    [
        ('attr.plan = "pro"', "pro", True),
        ('attr.plan = "pro"', "Pro", False),
        ('attr.plan = "pro"', 3, False),  # another type behaves as unset
        ('attr.plan = "pro"', None, False),
        ('attr.plan != "pro"', 3, True),
        ('attr.plan != "pro"', None, True),
        ('attr.plan != "pro"', "pro", False),
        ('attr.plan > "a"', "b", True),
        ('attr.plan > "a"', 5, False),
        ("attr.n = 1", 1, True),
        ("attr.n = 1", 1.0, True),
        ("attr.n = 1", True, False),  # true is not 1
        ("attr.n = 0", False, False),
        ("attr.n = 1", "1", False),
        ("attr.n != 1", True, True),
        ("attr.n != 1", 1, False),
        ("attr.n > 1", 2, True),
        ("attr.n > 1", 2.5, True),
        ("attr.n > 1", True, False),
        ("attr.n > 1", "2", False),
        ("attr.n > 1", None, False),
        ("attr.n <= -1.5", -2, True),
        ("attr.flag = true", True, True),
        ("attr.flag = true", 1, False),
        ("attr.flag = true", "true", False),
        ("attr.flag = false", False, True),
        ("attr.flag = false", 0, False),
        ("attr.flag != true", 1, True),
        ("attr.flag != true", None, True),
        ("attr.flag != true", True, False),
        ("attr.flag", True, True),
        ("attr.flag", 1, False),
        ("attr.flag < true", False, False),  # booleans have no order
        ("attr.flag >= false", True, False),
        ('attr.n in [1, "a", true]', 1, True),
        ('attr.n in [1, "a", true]', 1.0, True),
        ('attr.n in [1, "a", true]', True, True),
        ('attr.n in [1, "a", true]', "a", True),
        ('attr.n in [1, "a", true]', 2, False),
        ('attr.n in [1, "a"]', True, False),
        ('attr.n in [1, "a", true]', "1", False),
        ('attr.n in [1, "a", true]', None, False),
        ('attr.n in [1, "a", true]', ["a"], False),
        ('attr.plan in ["pro", "team"]', "team", True),
        ('attr.plan in ["pro", "team"]', ["pro"], False),  # a list is not one of the strings
        ('attr.plan in ["pro", "team"]', 1, False),
        ('attr.plan not in ["pro", "team"]', ["pro"], True),
        ('attr.plan not in ["pro", "team"]', None, True),
        ('attr.plan not in ["pro", "team"]', "pro", False),
        ('attr.n not in [1, "a"]', True, True),
        ('attr.n not in [1, "a"]', None, True),
        ('attr.n not in [1, "a"]', 1, False),
        ("attr.n in [2026-11-13T15:30:00Z, now]", AttributeInstant(SEEN), True),
        ("attr.n in [7 days ago]", AttributeInstant(SEEN), True),
        ("attr.n in [now]", AttributeInstant(SEEN), False),
        ('attr.tags contains "vip"', ["vip", "beta"], True),
        ('attr.tags contains "vip"', ["VIP"], False),
        ('attr.tags contains "VIP"', ["vip"], False),
        ('attr.tags contains "VIP"', "a vip user", False),
        ('attr.tags contains "vip"', ["vip-2"], False),  # list membership, not substring
        ('attr.tags contains "vip"', "a vip user", True),  # substring of a string
        ('attr.tags contains "vip"', 3, False),
        ('attr.tags contains "vip"', None, False),
        ("attr.tags contains 3", ["3"], False),
        ('attr.name matches "^a"', "abc", True),
        ('attr.name matches "^a"', ["abc"], False),
        ('attr.name matches "^a"', 3, False),
        ('attr.name matches "^a"', None, False),
        ("attr.seen >= 7 days ago", AttributeInstant(SEEN), True),
        ("attr.seen >= 7 days ago", AttributeInstant(SEEN - 1), False),
        ("attr.seen >= 7 days ago", "2026-11-20T00:00:00Z", False),  # a string is not an instant
        ("attr.seen >= 7 days ago", AT, False),  # nor is a number
        ("attr.seen < 2026-11-14", AttributeInstant(SEEN), True),
        ("attr.seen = 2026-11-13T15:30:00Z", AttributeInstant(SEEN), True),
        ("attr.seen != now", "now", True),
        ("attr.seen is set", "", True),
        ("attr.seen is set", None, False),
        ("attr.seen is not set", None, True),
        ("attr.seen is not set", False, False),
    ],
)
def test_custom_attributes(clause: str, value: object, expected: bool) -> None:
    name = clause.split(maxsplit=1)[0].removeprefix("attr.")
    custom = {} if value is None else {name: value}
    assert holds(clause, make_profile(custom=custom)) is expected


def test_attribute_with_any_name() -> None:
    profile = make_profile(custom={"plan type": "pro", "and": 1})
    assert holds('attr["plan type"] = "pro" and attr.and = 1', profile)
    assert holds('attr["and"] = 1', profile)


# --- boolean structure --------------------------------------------------------------------------

TRUTHS = {"t": "push_enabled = true", "f": "push_enabled = false"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("t and f", False),
        ("t or f", True),
        ("not t", False),
        ("not f", True),
        ("f or t and f", False),  # and binds tighter than or
        ("(f or t) and f", False),
        ("(f or t) and t", True),
        ("not f and f", False),  # not binds tighter than and
        ("not (f and f)", True),
        ("not not t", True),
        ("f or f or f or f or t", True),
        ("t and t and t and t and t and f", False),
        ("t and t and t and t and t and t", True),
    ],
)
def test_boolean_structure(expression: str, expected: bool) -> None:
    text = " ".join(
        TRUTHS.get(word, word) for word in expression.replace("(", "( ").replace(")", " )").split()
    )
    assert holds(text, make_profile(push_enabled=True)) is expected


@pytest.mark.parametrize(
    ("clause", "value", "expected"),
    [
        # `not` negates the whole comparison, unset included: not (unset = x) is true.
        ('not country = "fr"', None, True),
        ('not country = "fr"', "fr", False),
        ('not country != "fr"', None, False),
        ('not country < "m"', None, True),
        ('not country in ["fr"]', None, True),
        ("not country is set", None, True),
        ('not country contains "f"', None, True),
    ],
)
def test_not_negates_the_comparison_after_it(clause: str, value: str | None, expected: bool) -> None:
    profile = make_profile(standard={} if value is None else {"country": value})
    assert holds(clause, profile) is expected


# --- random_bucket ------------------------------------------------------------------------------


def test_random_bucket_is_pinned() -> None:
    # blake2b (64 bits) of the user key, mod 10000. Pinned: a change here would silently move users
    # between experiment groups, so it must be a visible decision.
    assert [random_bucket(key) for key in ("u:alice", "u:bob", "d:0")] == [5474, 8303, 9380]
    assert all(0 <= random_bucket(f"u:{n}") < 10_000 for n in range(1000))


def test_random_bucket_field_hashes_the_profile_key() -> None:
    profile = make_profile()
    bucket = random_bucket("u:user-1")
    assert holds(f"random_bucket = {bucket}", profile)
    assert not holds(f"random_bucket != {bucket}", profile)
    anonymous = Profile(user_id=None, device_id="device-9")
    assert holds(f"random_bucket = {random_bucket('d:device-9')}", anonymous)


def test_random_bucket_is_uniform() -> None:
    buckets = [random_bucket(f"u:user-{n}") for n in range(20_000)]
    tenths = [0] * 10
    for bucket in buckets:
        tenths[bucket // 1000] += 1
    assert all(1800 <= count <= 2200 for count in tenths), tenths


# --- in_segment ---------------------------------------------------------------------------------


def test_in_segment_reads_membership_at_the_same_instant() -> None:
    segments = compile_sources(
        [
            (
                "a.seg",
                """
                segment recent { last_session >= 1 day ago }
                segment lapsed { not in_segment("recent") and sessions >= 1 }
                segment either { in_segment("recent") or in_segment("lapsed") }
                """,
            )
        ]
    )
    profile = make_profile(last_session=AT - 3600, sessions=DailyCounts(total=3))
    assert segments.evaluate_all(profile, AT) == {"recent": True, "lapsed": False, "either": True}
    later = AT + 2 * DAY
    assert segments.evaluate_all(profile, later) == {"recent": False, "lapsed": True, "either": True}
    assert segments.evaluate("lapsed", profile, later) is True
    assert segments.evaluate("either", make_profile(), later) is False


def test_compiled_predicate_takes_a_context() -> None:
    segments = compile_sources([("a.seg", "segment a { last_session >= 1 hour ago }")])
    predicate = segments["a"].predicate
    profile = make_profile(last_session=AT - 60)
    assert predicate(profile, EvalContext(AT)) is True
    assert predicate(profile, EvalContext(AT + 3600)) is False


COMPLEMENTS = [
    ('= "fr"', '!= "fr"'),
    ('in ["fr", 1]', 'not in ["fr", 1]'),
    ("is set", "is not set"),
    ("= 1", "!= 1"),
    ("= true", "!= true"),
]


@pytest.mark.parametrize(("positive", "negative"), COMPLEMENTS)
@pytest.mark.parametrize("value", [None, "fr", "de", 1, True, 1.0, ["fr"]])
def test_negated_pairs_are_exact_complements(positive: str, negative: str, value: object) -> None:
    """`!=`, `not in`, `is not set` are the negations of `=`, `in`, `is set`, unset and mismatched
    types included (the compiler relies on it to fold `not`)."""
    profile = make_profile(custom={} if value is None else {"x": value})
    assert holds(f"attr.x {positive}", profile) is not holds(f"attr.x {negative}", profile)
    assert holds(f"not attr.x {positive}", profile) is holds(f"attr.x {negative}", profile)


def test_instants_in_rules_are_rfc3339() -> None:
    assert parse_instant("2026-11-01T10:30:00Z") == 1_793_529_000.0
    profile = make_profile(created_at=1_793_529_000.0)
    assert holds("created_at = 2026-11-01T10:30:00Z and created_at > 2026-11-01", profile)
