"""When could a rule's value change, if the profile does not? The second compiled function of a
segment, for the sweep that re-reads only the users whose memberships time alone can change.

A forecast returns `(value at context.at, bound)`. `bound` is a lower bound on the earliest instant
after `at` at which the value could differ from the value at `at`, the profile staying as it is:
for every t with at < t < bound the value at t equals the value at `at`. None means never. A bound
may be early (the sweep then reads a user for nothing) but never late (it would miss a change).

Between data changes time moves a rule's value only through what the data fixes:
- an instant compared with a relative time (`last_session >= 7 days ago`) flips once, at
  value - offset, because the threshold at + offset grows with time;
- a window sum (`sessions(last 30 days)`, `pushes_received(last 7 days)`) changes only at a UTC
  midnight where a counted day leaves the window, or a counted day after the day of `at` (a clock
  running ahead) enters it; a windowed flag (`opened("x", last 30 days)`, "the count in the window
  is not 0") likewise;
- `in_segment` changes when the segment it reads does;
- everything else (absolute instants, attributes, lifetime counts) never changes with time.

Like the predicates, forecasts are closures built once from the checked condition (no eval), and
they reuse the compiled predicate of each leaf for the value, so both always agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from dsl.compiler import COMPARE, Access, Predicate, access_for, compile_comparison
from dsl.model import (
    And,
    AttributeRef,
    BoolLiteral,
    Comparison,
    Condition,
    FunctionRef,
    InstantLiteral,
    ListLiteral,
    NameArgument,
    Not,
    NowLiteral,
    Operator,
    Or,
    RelativeTime,
    Window,
)
from dsl.profile import AttributeInstant, ProfileView
from dsl.runtime import EvalContext
from dsl.timeutil import SECONDS_PER_DAY

Forecast = Callable[[ProfileView, EvalContext], tuple[bool, float | None]]
# The per-day amounts a window sums, or None when there are none (an event never seen).
DaysReader = Callable[[ProfileView], Mapping[int, float] | None]

_DAY = float(SECONDS_PER_DAY)
# Comparisons that only ever become true as the compared threshold grows (and those that only ever
# become false); used for instants against a moving threshold and for sums that only shrink.
_TRUE_WHEN_BELOW = frozenset({Operator.LT, Operator.LE})
# Float steps of slack for a crossing that rounding may move: the evaluation computes at + offset,
# the forecast value - offset, and each may round by half a step.
_ROUNDING_STEPS = 4


def compile_forecast(condition: Condition) -> Forecast:
    return _forecast(condition)[0]


def _forecast(condition: Condition) -> tuple[Forecast, int]:
    """The forecast and its estimated cost (as the compiler's: cheap operands are asked first)."""
    if isinstance(condition, Comparison):
        return _comparison_forecast(condition), access_for(condition.subject).cost
    if isinstance(condition, Not):
        inner, cost = _forecast(condition.operand)

        def negated(profile: ProfileView, context: EvalContext) -> tuple[bool, float | None]:
            value, change = inner(profile, context)
            return not value, change

        return negated, cost
    compiled = [_forecast(operand) for operand in condition.operands]
    compiled.sort(key=lambda item: item[1])
    parts = tuple(forecast for forecast, _ in compiled)
    cost = sum(cost for _, cost in compiled)
    if isinstance(condition, And):
        return _all_of(parts), cost
    assert isinstance(condition, Or)
    return _any_of(parts), cost


def _all_of(parts: tuple[Forecast, ...]) -> Forecast:
    def all_of(profile: ProfileView, context: EvalContext) -> tuple[bool, float | None]:
        # True: it turns false as soon as any operand changes (the earliest bound). False: it can
        # turn true only once every false operand has changed (the latest of their bounds), and
        # never if one of them never changes, which ends the walk early.
        earliest: float | None = None
        latest_false: float | None = None
        for part in parts:
            value, change = part(profile, context)
            if value:
                if change is not None and (earliest is None or change < earliest):
                    earliest = change
            elif change is None:
                return False, None
            elif latest_false is None or change > latest_false:
                latest_false = change
        if latest_false is not None:
            return False, latest_false
        return True, earliest

    return all_of


def _any_of(parts: tuple[Forecast, ...]) -> Forecast:
    def any_of(profile: ProfileView, context: EvalContext) -> tuple[bool, float | None]:
        # The mirror of all_of: true stays true until every true operand has changed.
        earliest: float | None = None
        latest_true: float | None = None
        for part in parts:
            value, change = part(profile, context)
            if not value:
                if change is not None and (earliest is None or change < earliest):
                    earliest = change
            elif change is None:
                return True, None
            elif latest_true is None or change > latest_true:
                latest_true = change
        if latest_true is not None:
            return True, latest_true
        return False, earliest

    return any_of


# --- leaves -------------------------------------------------------------------------------------


def _comparison_forecast(comparison: Comparison) -> Forecast:
    predicate = compile_comparison(comparison)
    subject = comparison.subject
    if isinstance(subject, FunctionRef) and subject.name == "in_segment":
        return _membership_forecast(predicate, _name_argument(subject))
    if isinstance(subject, FunctionRef) and any(
        isinstance(argument, Window) for argument in subject.arguments
    ):
        return _window_forecast(comparison, subject, predicate)
    offsets = _relative_offsets(comparison)
    if offsets:
        return _relative_forecast(comparison, access_for(subject), predicate, offsets)

    def constant(profile: ProfileView, context: EvalContext) -> tuple[bool, float | None]:
        return predicate(profile, context), None

    return constant


def _name_argument(subject: FunctionRef) -> str:
    return next(argument.value for argument in subject.arguments if isinstance(argument, NameArgument))


def _relative_offsets(comparison: Comparison) -> tuple[float, ...]:
    """The offsets from `at` of the operand's relative times (`now`, `N UNIT ago`), if any."""
    operand = comparison.operand
    items = operand.items if isinstance(operand, ListLiteral) else (operand,)
    return tuple(
        0.0 if isinstance(item, NowLiteral) else item.offset_seconds
        for item in items
        if isinstance(item, NowLiteral | RelativeTime)
    )


def _membership_forecast(predicate: Predicate, segment: str) -> Forecast:
    def membership(profile: ProfileView, context: EvalContext) -> tuple[bool, float | None]:
        # The segment read was forecast before this one (dependency order) at the same instant.
        return predicate(profile, context), context.next_changes[segment]

    return membership


# --- instants against relative times ------------------------------------------------------------


def _relative_forecast(
    comparison: Comparison, access: Access, predicate: Predicate, offsets: tuple[float, ...]
) -> Forecast:
    operator = comparison.operator
    read = access.read
    custom = isinstance(comparison.subject, AttributeRef)
    if operator.is_ordering:
        compare = COMPARE[operator]
        (offset,) = offsets
        # As time passes the threshold at + offset grows, so `value < threshold` ends true and
        # `value > threshold` ends false; a clause already at its final value stays there.
        final = operator in _TRUE_WHEN_BELOW

        def ordering(profile: ProfileView, context: EvalContext) -> tuple[bool, float | None]:
            now = predicate(profile, context)
            if now is final:
                return now, None
            instant = _instant(read(profile, context), custom)
            if instant is None:
                return now, None
            return now, _crossing(instant, offset, compare, now, context.at)

        return ordering
    if operator in (Operator.EQ, Operator.NE, Operator.IN, Operator.NOT_IN):
        constants = _constant_instants(comparison)

        def equality(profile: ProfileView, context: EvalContext) -> tuple[bool, float | None]:
            now = predicate(profile, context)
            instant = _instant(read(profile, context), custom)
            # Equal to a fixed item of the list: a member whatever the time.
            if instant is None or instant in constants:
                return now, None
            return now, _earliest_meeting(instant, offsets, context.at)

        return equality

    # `contains` with a relative time: only a list holding instants could change, and custom lists
    # hold strings. Should one ever hold an instant, ask again at once rather than guess.
    def other(profile: ProfileView, context: EvalContext) -> tuple[bool, float | None]:
        value = read(profile, context)
        moving = isinstance(value, list) and any(isinstance(item, AttributeInstant) for item in value)
        return predicate(profile, context), context.at if moving else None

    return other


def _constant_instants(comparison: Comparison) -> frozenset[float]:
    operand = comparison.operand
    items = operand.items if isinstance(operand, ListLiteral) else ()
    return frozenset(item.epoch for item in items if isinstance(item, InstantLiteral))


def _instant(value: Any, custom: bool) -> float | None:
    """The instant a clause compares, or None when it has none (unset, or a custom attribute of
    another type): such a clause does not move with time."""
    if custom:
        if type(value) is not AttributeInstant:
            return None
        value = value.epoch
    if value is None or not math.isfinite(value):
        # Nothing finite is ever equal to, before or after an infinity or NaN at another time.
        return None
    return float(value)


def _slack(*numbers: float) -> float:
    return _ROUNDING_STEPS * math.ulp(max(abs(number) for number in numbers))


def _crossing(
    instant: float, offset: float, compare: Callable[[Any, Any], bool], now: bool, at: float
) -> float | None:
    """When `compare(instant, t + offset)`, `now` at `at`, turns: at instant - offset. Rounding of
    t + offset may move that by a float step, so check the step before and step back if needed
    (earlier is safe; exact in the common case, so `last_session >= 7 days ago` gives exactly
    last_session + 7 days)."""
    crossing = instant - offset
    if not math.isfinite(crossing):
        return None
    before = math.nextafter(crossing, -math.inf)
    if compare(instant, before + offset) is not now:
        crossing -= _slack(instant, offset, crossing)
    return max(crossing, at)


def _earliest_meeting(instant: float, offsets: tuple[float, ...], at: float) -> float | None:
    """The earliest instant after `at` at which `instant == t + offset` could start or stop holding,
    over the offsets; None if never."""
    earliest: float | None = None
    for offset in offsets:
        if instant == at + offset:
            return at  # equal now: unequal a moment later
        meeting = instant - offset
        slack = _slack(instant, offset, meeting)
        if not math.isfinite(meeting) or meeting + slack < at:
            continue  # met in the past, or never
        meeting = max(meeting - slack, at)
        if earliest is None or meeting < earliest:
            earliest = meeting
    return earliest


# --- windows ------------------------------------------------------------------------------------


def _window_forecast(comparison: Comparison, subject: FunctionRef, predicate: Predicate) -> Forecast:
    window = next(argument for argument in subject.arguments if isinstance(argument, Window))
    days = window.days
    span = days - 1
    read_days = _days_reader(subject)
    operator = comparison.operator
    # With every counted day on or before the day of `at`, the sum only loses days as time passes,
    # and a sum of non-negative amounts only shrinks: an ordering against a constant then turns at
    # most once, and its final side is known. So does a windowed flag (received("x", last 7 days):
    # "the count is not 0") compared with = or != true or false: true ends false, and `= false` true.
    shrinking_search = operator.is_ordering
    final_when_shrinking = operator in _TRUE_WHEN_BELOW
    operand = comparison.operand
    if operator in (Operator.EQ, Operator.NE) and isinstance(operand, BoolLiteral):
        shrinking_search = True
        final_when_shrinking = operand.value == (operator is Operator.NE)

    def window_forecast(profile: ProfileView, context: EvalContext) -> tuple[bool, float | None]:
        now = predicate(profile, context)
        by_day = read_days(profile)
        if not by_day:
            return now, None
        last_day = context.at_day
        first_day = last_day - span
        inside: list[int] = []
        next_entry: int | None = None  # the first counted day after the day of `at`
        shrinks = True
        for day, amount in by_day.items():
            if not amount:
                continue
            if day > last_day:
                if next_entry is None or day < next_entry:
                    next_entry = day
            elif day >= first_day:
                inside.append(day)
                if not amount > 0:  # a refund, or NaN: the sum need not shrink
                    shrinks = False
        # Days before the window have left it for good.
        if next_entry is not None or not shrinks or not shrinking_search:
            # The day `d` leaves the window at the midnight that starts day d + days.
            leaving = min(inside) + days if inside else None
            if leaving is None and next_entry is None:
                return now, None
            if leaving is None or (next_entry is not None and next_entry < leaving):
                assert next_entry is not None
                return now, next_entry * _DAY
            return now, leaving * _DAY
        if not inside or now is final_when_shrinking:
            return now, None
        return now, _first_turn(profile, predicate, now, sorted(inside), days)

    return window_forecast


def _first_turn(
    profile: ProfileView, predicate: Predicate, now: bool, inside: list[int], days: int
) -> float | None:
    """The midnight at which the clause first differs from `now`, days leaving oldest first; it
    turns at most once, so a binary search over the leaving midnights finds it."""
    low, high = 0, len(inside)  # the answer is in inside[low:high], or none when low == len
    while low < high:
        middle = (low + high) // 2
        probe = EvalContext((inside[middle] + days) * _DAY)
        if predicate(profile, probe) is now:
            low = middle + 1
        else:
            high = middle
    if low == len(inside):
        return None
    return (inside[low] + days) * _DAY


def _days_reader(subject: FunctionRef) -> DaysReader:
    name = subject.name
    if name == "sessions":
        return lambda profile: profile.sessions.by_day
    if name == "purchases":
        return lambda profile: profile.purchases.by_day
    if name == "pushes_received":
        return lambda profile: profile.pushes_received.by_day
    if name == "pushes_opened":
        return lambda profile: profile.pushes_opened.by_day
    if name == "spent":
        return lambda profile: profile.spent_by_day
    if name in ("received", "opened"):
        campaign = _name_argument(subject)
        opens = name == "opened"

        def campaign_days(profile: ProfileView) -> Mapping[int, float] | None:
            history = profile.campaigns.get(campaign)
            if history is None:
                return None
            return (history.opens if opens else history.receives).by_day

        return campaign_days
    assert name == "events", f"no days for {name}(...)"
    key = _name_argument(subject)

    def event_days(profile: ProfileView) -> Mapping[int, float] | None:
        stats = profile.events.get(key)
        return None if stats is None else stats.counts.by_day

    return event_days
