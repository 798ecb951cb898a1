"""A deliberately plain reading of dsl.md, to compare the compiled closures with.

It walks the parsed definitions on every call, types every value explicitly, and shares no code
with dsl.compiler or dsl.fields: if both agree on random rules and profiles, the fast path is right.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from dsl.model import (
    And,
    AttributeRef,
    BoolLiteral,
    Comparison,
    Condition,
    FieldRef,
    FunctionRef,
    InstantLiteral,
    ListLiteral,
    NameArgument,
    Not,
    NowLiteral,
    NumberLiteral,
    Operator,
    RelativeTime,
    Scalar,
    SegmentDef,
    StringLiteral,
    Window,
)
from kudos.core.profile import AttributeInstant, DailyCounts, Profile


@dataclass(frozen=True)
class Typed:
    """A value with its language type: string, number, bool, instant, list; or unset."""

    kind: str
    value: object = None


UNSET = Typed("unset")

_INSTANT_ATTRIBUTES = {
    "created_at",
    "first_session",
    "last_session",
    "first_purchase",
    "last_purchase",
    "push_opted_in_at",
    "push_unsubscribed_at",
    "last_received_any",
    "last_opened_any",
}
_STRING_ATTRIBUTES = {"push_subscription", "email_subscription"}
_STANDARD = {
    "country",
    "language",
    "time_zone",
    "platform",
    "app_version",
    "first_name",
    "last_name",
    "email",
}


def _maybe(kind: str, value: object) -> Typed:
    return UNSET if value is None else Typed(kind, value)


def _window_days(window: Window, at: float) -> range:
    today = int(at // 86_400)
    length = window.amount * (7 if window.unit.name == "WEEK" else 1)
    return range(today - length + 1, today + 1)


def _count_in(counts: DailyCounts, window: Window, at: float) -> int:
    return sum(counts.by_day.get(day, 0) for day in _window_days(window, at))


def _typed_custom(value: object) -> Typed:
    if value is None:
        return UNSET
    if isinstance(value, bool):
        return Typed("bool", value)
    if isinstance(value, int | float):
        return Typed("number", value)
    if isinstance(value, str):
        return Typed("string", value)
    if isinstance(value, AttributeInstant):
        return Typed("instant", value.epoch)
    if isinstance(value, list):
        return Typed("list", value)
    return Typed("other", value)


def read(subject: object, profile: Profile, at: float, memberships: Mapping[str, bool]) -> Typed:
    if isinstance(subject, AttributeRef):
        return _typed_custom(profile.custom.get(subject.name))
    if isinstance(subject, FieldRef):
        name = subject.name
        if name == "user_id":
            return _maybe("string", profile.user_id)
        if name == "anonymous":
            return Typed("bool", profile.user_id is None)
        if name in _STANDARD:
            return _maybe("string", profile.standard.get(name))
        if name in _STRING_ATTRIBUTES:
            return _maybe("string", getattr(profile, name))
        if name in _INSTANT_ATTRIBUTES:
            return _maybe("instant", getattr(profile, name))
        if name == "random_bucket":
            digest = hashlib.blake2b(profile.key.encode(), digest_size=8).digest()
            return Typed("number", int.from_bytes(digest, "big") % 10_000)
        if name == "sessions":
            return Typed("number", profile.sessions.total)
        if name == "purchases":
            return Typed("number", profile.purchases.total)
        if name == "spent":
            return Typed("number", profile.spent_total)
        if name == "push_enabled":
            return Typed("bool", profile.push_enabled)
        raise AssertionError(f"the reference does not know {name}")
    assert isinstance(subject, FunctionRef)
    name = subject.name
    names = [argument.value for argument in subject.arguments if isinstance(argument, NameArgument)]
    windows = [argument for argument in subject.arguments if isinstance(argument, Window)]
    if name in ("sessions", "purchases"):
        return Typed("number", _count_in(getattr(profile, name), windows[0], at))
    if name == "spent":
        days = _window_days(windows[0], at)
        return Typed("number", sum(profile.spent_by_day.get(day, 0.0) for day in days))
    if name == "events":
        stats = profile.events.get(names[0])
        if stats is None:
            return Typed("number", 0)
        return Typed("number", _count_in(stats.counts, windows[0], at) if windows else stats.counts.total)
    if name in ("first_event", "last_event"):
        stats = profile.events.get(names[0])
        return (
            UNSET
            if stats is None
            else _maybe("instant", stats.first if name == "first_event" else stats.last)
        )
    if name == "pushes_received":
        return Typed("number", _count_in(profile.pushes_received, windows[0], at))
    if name == "pushes_opened":
        return Typed("number", _count_in(profile.pushes_opened, windows[0], at))
    if name == "in_segment":
        return Typed("bool", memberships[names[0]])
    history = profile.campaigns.get(names[0])
    if name == "last_received":
        return UNSET if history is None else _maybe("instant", history.last_received)
    if name == "last_opened":
        return UNSET if history is None else _maybe("instant", history.last_opened)
    if windows:
        # received("x", WINDOW), opened("x", WINDOW): a push of it received / opened on a day inside.
        if history is None:
            return Typed("bool", False)
        counts = history.receives if name == "received" else history.opens
        return Typed("bool", _count_in(counts, windows[0], at) >= 1)
    return Typed("bool", False if history is None else getattr(history, name))


def literal(item: Scalar, at: float) -> Typed:
    if isinstance(item, StringLiteral):
        return Typed("string", item.value)
    if isinstance(item, BoolLiteral):
        return Typed("bool", item.value)
    if isinstance(item, NumberLiteral):
        return Typed("number", item.value)
    if isinstance(item, InstantLiteral):
        return Typed("instant", item.epoch)
    if isinstance(item, NowLiteral):
        return Typed("instant", at)
    assert isinstance(item, RelativeTime)
    seconds = {"MINUTE": 60, "HOUR": 3600, "DAY": 86_400, "WEEK": 604_800}[item.unit.name]
    return Typed("instant", at + item.direction * item.amount * seconds)


def _equal(left: Typed, right: Typed) -> bool:
    return left.kind == right.kind and left.kind != "unset" and left.value == right.value


def _ordered(operator: Operator, left: Typed, right: Typed) -> bool:
    if left.kind != right.kind or left.kind not in ("string", "number", "instant"):
        return False
    a, b = left.value, right.value
    if operator is Operator.LT:
        return a < b  # type: ignore[operator]
    if operator is Operator.LE:
        return a <= b  # type: ignore[operator]
    if operator is Operator.GT:
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def compare(comparison: Comparison, value: Typed, at: float) -> bool:
    operator, operand = comparison.operator, comparison.operand
    if operator is Operator.IS_SET:
        return value.kind != "unset"
    if operator is Operator.IS_NOT_SET:
        return value.kind == "unset"
    if operator in (Operator.IN, Operator.NOT_IN):
        assert isinstance(operand, ListLiteral)
        found = any(_equal(value, literal(item, at)) for item in operand.items)
        return found if operator is Operator.IN else not found
    assert operand is not None
    assert not isinstance(operand, ListLiteral)
    right = literal(operand, at)
    if operator is Operator.EQ:
        return _equal(value, right)
    if operator is Operator.NE:
        return not _equal(value, right)
    if operator is Operator.CONTAINS:
        if value.kind == "list":
            return any(_equal(_typed_custom(item), right) for item in value.value)  # type: ignore[attr-defined]
        if value.kind == "string" and right.kind == "string":
            return str(right.value) in str(value.value)
        return False
    if operator is Operator.MATCHES:
        return value.kind == "string" and re.search(str(right.value), str(value.value)) is not None
    return _ordered(operator, value, right)


def holds(condition: Condition, profile: Profile, at: float, memberships: Mapping[str, bool]) -> bool:
    if isinstance(condition, Comparison):
        return compare(condition, read(condition.subject, profile, at, memberships), at)
    if isinstance(condition, Not):
        return not holds(condition.operand, profile, at, memberships)
    results = [holds(operand, profile, at, memberships) for operand in condition.operands]
    return all(results) if isinstance(condition, And) else any(results)


def reference_memberships(definitions: list[SegmentDef], profile: Profile, at: float) -> dict[str, bool]:
    """Every segment, each evaluated on demand (recursively through in_segment, no ordering)."""
    by_name = {definition.name: definition for definition in definitions}
    results: dict[str, bool] = {}

    class LazyMemberships(Mapping[str, bool]):
        def __getitem__(self, name: str) -> bool:
            if name not in results:
                results[name] = holds(by_name[name].condition, profile, at, self)
            return results[name]

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(by_name)

        def __len__(self) -> int:
            return len(by_name)

    lazy = LazyMemberships()
    return {name: lazy[name] for name in by_name}
