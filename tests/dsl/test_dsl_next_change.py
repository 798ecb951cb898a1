"""Next-change bounds: nothing changes before the bound (properties over random rules, profiles and
instants), and the bound is where the data says it is in the simple cases (examples)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsl import SegmentSet, compile_sources
from dsl.runtime import EvalContext
from kudos.core.profile import AttributeInstant, CampaignHistory, DailyCounts, EventStats, Profile
from tests.dsl.support import AT, AT_DAY, DAY, make_profile, rule
from tests.dsl.test_dsl_properties import CLAUSE_BATCHES, PROPERTY_SETTINGS, profiles_at, programs

# How far past `at` a bound of None (never) is checked: beyond every window (90 days) and offset.
NEVER_HORIZON = 200 * DAY


def _bounds_by_segment(
    segments: SegmentSet, profile: Profile, at: float
) -> tuple[dict[str, bool], dict[str, float | None]]:
    """Each segment's own bound, through CompiledSegment.next_change, in dependency order."""
    context = EvalContext(at)
    for name, segment in segments.items():
        context.next_changes[name] = segment.next_change(profile, context)
        context.memberships[name] = segments.evaluate(name, profile, at)
    return context.memberships, context.next_changes


def _instants_before(at: float, bound: float | None, draws: list[float]) -> list[float]:
    """Instants strictly between `at` and `bound` to check: the last float before the bound, every
    UTC midnight in between (where windows move) and the float before it, and random draws."""
    end = at + NEVER_HORIZON if bound is None else bound
    chosen = [math.nextafter(end, -math.inf), *(at + (end - at) * fraction for fraction in draws)]
    midnight = (math.floor(at / DAY) + 1) * DAY
    while midnight < end and midnight < at + NEVER_HORIZON:
        chosen += [midnight, math.nextafter(midnight, -math.inf)]
        midnight += DAY
    if bound is None:
        chosen += [at + 10_000 * DAY]
    return [instant for instant in chosen if at < instant < end or (bound is None and instant > at)]


FRACTIONS = st.lists(st.floats(0, 1, exclude_min=True, exclude_max=True), min_size=1, max_size=4)


def _assert_no_change_before_bounds(
    segments: SegmentSet, profile: Profile, at: float, draws: list[float]
) -> None:
    memberships, bounds = _bounds_by_segment(segments, profile, at)
    assert segments.forecast_all(profile, at) == (
        segments.evaluate_all(profile, at),
        min((bound for bound in bounds.values() if bound is not None), default=None),
    )
    for name, bound in bounds.items():
        assert bound is None or bound >= at
        for instant in _instants_before(at, bound, draws):
            assert segments.evaluate(name, profile, instant) is memberships[name], (name, instant, bound)


@PROPERTY_SETTINGS
@given(program=programs(), profiles=st.lists(profiles_at, min_size=1, max_size=3), draws=FRACTIONS)
def test_no_segment_changes_before_its_bound(
    program: str, profiles: list[tuple[Profile, float]], draws: list[float]
) -> None:
    segments = compile_sources([("generated.seg", program)])
    for profile, at in profiles:
        _assert_no_change_before_bounds(segments, profile, at, draws)


@PROPERTY_SETTINGS
@given(clauses=CLAUSE_BATCHES, profiles=st.lists(profiles_at, min_size=1, max_size=3), draws=FRACTIONS)
def test_no_clause_changes_before_its_bound(
    clauses: list[str], profiles: list[tuple[Profile, float]], draws: list[float]
) -> None:
    program = "\n".join(f"segment c{index} {{ {clause} }}" for index, clause in enumerate(clauses))
    segments = compile_sources([("clauses.seg", program)])
    for profile, at in profiles:
        _assert_no_change_before_bounds(segments, profile, at, draws)


# --- the bound is where the data says -----------------------------------------------------------


def next_change(expression: str, profile: Profile, at: float = AT) -> float | None:
    return rule(expression).next_change_all(profile, at)


def sessions_on(*days_before_at: int) -> DailyCounts:
    by_day: dict[int, int] = {}
    for days in days_before_at:
        by_day[AT_DAY - days] = by_day.get(AT_DAY - days, 0) + 1
    return DailyCounts(total=len(days_before_at), by_day=by_day)


def midnight_after(days_before_at: int, window_days: int) -> float:
    """The midnight at which a day `days_before_at` before the day of AT leaves a window."""
    return (AT_DAY - days_before_at + window_days) * DAY


def test_an_instant_against_a_relative_time_turns_at_value_plus_offset() -> None:
    profile = make_profile(last_session=AT - 2 * DAY)
    assert next_change("last_session >= 7 days ago", profile) == AT + 5 * DAY
    assert next_change("not last_session >= 7 days ago", profile) == AT + 5 * DAY
    assert next_change("last_session > 1 week ago", profile) == AT + 5 * DAY
    # Already past its turn: `last_session < 1 day ago` is true and stays true.
    assert next_change("last_session < 1 day ago", profile) is None
    # Unset, or against an absolute instant: time changes nothing.
    assert next_change("last_session >= 7 days ago", make_profile()) is None
    assert next_change("last_session >= 2026-11-01", profile) is None


def test_a_custom_instant_and_event_instants_turn_at_value_plus_offset() -> None:
    renewal = make_profile(custom={"renewal": AttributeInstant(AT + 10 * DAY)})
    assert next_change("attr.renewal < 3 days from now", renewal) == AT + 7 * DAY
    assert next_change("attr.renewal <= now", renewal) == AT + 10 * DAY
    assert next_change("attr.renewal < 3 days from now", make_profile(custom={"renewal": "soon"})) is None
    events = make_profile(events={"open": EventStats(first=AT - 3600, last=AT - 60)})
    assert next_change('first_event("open") >= 2 hours ago', events) == AT + 3600


def test_a_window_turns_when_counted_days_leave_it() -> None:
    assert next_change("sessions(last 30 days) >= 12", make_profile()) is None
    # One session three days ago: gone from a 30-day window at the midnight 27 days after today.
    one = make_profile(sessions=sessions_on(3))
    assert next_change("sessions(last 30 days) >= 1", one) == midnight_after(3, 30)
    assert next_change("sessions(last 2 weeks) >= 1", one) == midnight_after(3, 14)
    # Fewer than 12 can only become fewer: never true again without new data.
    assert next_change("sessions(last 30 days) >= 12", one) is None
    # 14 sessions: the 12-or-more turns false when the third oldest day leaves, not the first.
    busy = make_profile(sessions=sessions_on(*range(1, 15)))
    assert next_change("sessions(last 30 days) >= 12", busy) == midnight_after(12, 30)
    # `= n` is not monotone: the first day that leaves bounds it.
    assert next_change("sessions(last 30 days) = 14", busy) == midnight_after(14, 30)


def test_a_day_after_the_day_of_at_enters_the_window_at_its_midnight() -> None:
    ahead = make_profile(sessions=sessions_on(-2))  # a clock running two days ahead
    assert next_change("sessions(last 7 days) >= 1", ahead) == (AT_DAY + 2) * DAY


def test_spent_and_events_windows() -> None:
    profile = make_profile(
        spent_by_day={AT_DAY - 5: 10.0, AT_DAY - 1: 2.5},
        events={"buy": EventStats(counts=DailyCounts(total=1, by_day={AT_DAY - 6: 1}))},
    )
    assert next_change("spent(last 7 days) > 12", profile) == midnight_after(5, 7)
    assert next_change("spent(last 7 days) < 1", profile) == midnight_after(1, 7)
    assert next_change('events("buy", last 7 days) >= 1', profile) == midnight_after(6, 7)
    assert next_change('events("open", last 7 days) >= 1', profile) is None


def test_messaging_history_turns_with_time() -> None:
    pushes = sessions_on(1, 3, 3)  # one push yesterday, two three days ago
    profile = make_profile(pushes_received=pushes, pushes_opened=sessions_on(20), last_opened_any=AT - DAY)
    profile.campaigns["promo"] = CampaignHistory(
        received=True,
        opened=True,
        last_received=AT - DAY,
        last_opened=AT - 20 * DAY,
        receives=pushes,
        opens=sessions_on(20),
    )
    # Three pushes this week: `<= 2` turns true when the day with two leaves, not the first day.
    assert next_change("pushes_received(last 7 days) <= 2", profile) == midnight_after(3, 7)
    assert next_change("pushes_received(last 7 days) >= 1", profile) == midnight_after(1, 7)
    assert next_change("pushes_opened(last 30 days) >= 1", profile) == midnight_after(20, 30)
    assert next_change("pushes_opened(last 7 days) >= 1", profile) is None  # false for good
    # A windowed flag turns when its last day inside leaves; only then, and only the one way.
    assert next_change('received("promo", last 7 days)', profile) == midnight_after(1, 7)
    assert next_change('received("promo", last 7 days) = false', profile) == midnight_after(1, 7)
    assert next_change('received("promo", last 7 days) != true', profile) == midnight_after(1, 7)
    assert next_change('opened("promo", last 30 days) != false', profile) == midnight_after(20, 30)
    assert next_change('opened("promo", last 7 days)', profile) is None
    assert next_change('opened("promo", last 7 days) = false', profile) is None
    assert next_change('opened("other", last 7 days) = false', profile) is None
    # Open instants against relative times turn at value + offset.
    assert next_change('last_opened("promo") >= 30 days ago', profile) == AT + 10 * DAY
    assert next_change("last_opened_any >= 3 days ago", profile) == AT + 2 * DAY
    assert next_change('last_received("promo") < 2 days ago', profile) == AT + DAY
    assert next_change('last_opened("other") >= 30 days ago', profile) is None


def test_and_or_not_combine_the_bounds_of_their_operands() -> None:
    profile = make_profile(last_session=AT - 2 * DAY, push_subscription="unsubscribed")
    # A false operand that never changes keeps a conjunction false for good (and `or` true).
    assert next_change('push_subscription = "opted_in" and last_session >= 7 days ago', profile) is None
    assert next_change('push_subscription = "unsubscribed" or last_session >= 7 days ago', profile) is None
    # Otherwise the earliest operand change.
    assert (
        next_change('push_subscription = "unsubscribed" and last_session >= 7 days ago', profile)
        == AT + 5 * DAY
    )
    both = "last_session >= 7 days ago and last_session < 1 day ago"
    assert next_change(both, profile) == AT + 5 * DAY
    # A false conjunction turns true only when all its false operands have turned.
    later = make_profile(last_session=AT + 2 * DAY)
    assert next_change("last_session <= 1 day from now and last_session <= 1 day ago", later) == AT + 3 * DAY


def test_in_segment_inherits_the_bound_of_the_segment_it_reads() -> None:
    segments = compile_sources(
        [
            (
                "s.seg",
                'segment active { last_session >= 7 days ago }\nsegment lapsed { not in_segment("active") }\n'
                'segment fixed { in_segment("active") or anonymous = false }',
            )
        ]
    )
    profile = make_profile(last_session=AT - 2 * DAY)
    memberships, bound = segments.forecast_all(profile, AT)
    assert memberships == {"active": True, "lapsed": False, "fixed": True}
    assert bound == AT + 5 * DAY
    _, bounds = _bounds_by_segment(segments, profile, AT)
    assert bounds == {"active": AT + 5 * DAY, "lapsed": AT + 5 * DAY, "fixed": None}


def test_next_change_all_is_the_earliest_over_the_segments() -> None:
    segments = compile_sources(
        [("s.seg", "segment a { last_session >= 7 days ago }\nsegment b { created_at >= 1 day ago }")]
    )
    profile = make_profile(last_session=AT - 2 * DAY, created_at=AT - 3600)
    assert segments.next_change_all(profile, AT) == AT + DAY - 3600
    assert segments.next_change_all(make_profile(), AT) is None


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # At midnight the day of `at` is already in the window; the oldest day leaves a day later.
        (AT_DAY * DAY, (AT_DAY + 1) * DAY),
        # A millisecond before, the day of AT is still ahead: it enters at its midnight.
        (AT_DAY * DAY - 0.001, AT_DAY * DAY),
        ((AT_DAY + 1) * DAY - 0.5, (AT_DAY + 1) * DAY),
    ],
)
def test_bounds_around_midnight(at: float, expected: float) -> None:
    profile = make_profile(sessions=sessions_on(0, 6))
    assert next_change("sessions(last 7 days) >= 2", profile, at) == expected
