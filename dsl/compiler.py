"""Checked conditions to plain Python closures: `Callable[[ProfileView, EvalContext], bool]`.

Rules are data. Nothing here evaluates text as code (no eval/exec/compile): each clause becomes a
closure chosen from a fixed set, with its constants (literals, regexes, window lengths, sets for
`in`) prepared once, here. What depends on `at` is derived from the context at evaluation: an
offset added to `ctx.at`, a day subtracted from `ctx.at_day` — one arithmetic operation, as cheap
as looking a precomputed bound up.

The compiler trusts the checker: it is only given conditions that checked clean.
"""

from __future__ import annotations

import dataclasses
import operator as operators
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dsl.fields import FIELDS, NEVER_UNSET, STANDARD_ATTRIBUTES, ValueType
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
    Or,
    RelativeTime,
    Scalar,
    StringLiteral,
    Subject,
    Window,
)
from dsl.profile import AttributeInstant, ProfileView
from dsl.runtime import EvalContext, random_bucket

Predicate = Callable[[ProfileView, EvalContext], bool]
Reader = Callable[[ProfileView, EvalContext], Any]
# A test on a value already read (custom attributes, where the type is only known then).
ValueTest = Callable[[Any, EvalContext], bool]

COMPARE: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.EQ: operators.eq,
    Operator.NE: operators.ne,
    Operator.LT: operators.lt,
    Operator.LE: operators.le,
    Operator.GT: operators.gt,
    Operator.GE: operators.ge,
}
# Each of these is exactly the negation of its partner, unset values included (dsl.md: `=` is
# false on unset, `!=` true, and so on), so `not a = 1` compiles to `a != 1`: one closure fewer.
_COMPLEMENT = {
    Operator.EQ: Operator.NE,
    Operator.NE: Operator.EQ,
    Operator.IN: Operator.NOT_IN,
    Operator.NOT_IN: Operator.IN,
    Operator.IS_SET: Operator.IS_NOT_SET,
    Operator.IS_NOT_SET: Operator.IS_SET,
}
_NUMBER_TYPES = frozenset({int, float})  # exact types: a bool is not a number here

# Built-in fields that are plain attributes of ProfileView (read with getattr, inline in the clause).
_PROFILE_ATTRIBUTES = {
    "user_id": "user_id",
    "anonymous": "anonymous",
    "created_at": "created_at",
    "first_session": "first_session",
    "last_session": "last_session",
    "spent": "spent_total",
    "first_purchase": "first_purchase",
    "last_purchase": "last_purchase",
    "push_subscription": "push_subscription",
    "email_subscription": "email_subscription",
    "push_enabled": "push_enabled",
    "push_opted_in_at": "push_opted_in_at",
    "push_unsubscribed_at": "push_unsubscribed_at",
    "last_received_any": "last_received_any",
    "last_opened_any": "last_opened_any",
}
_CAMPAIGN_FLAGS = ("received", "opened", "converted", "in_control")

# What reading a subject costs, roughly, in units of one attribute read (~40 ns). A window sum
# walks every stored day (1-5 µs), random_bucket hashes the key (~0.5 µs).
COST_ATTRIBUTE = 1
COST_LOOKUP = 2
COST_HASH = 10
COST_WINDOW = 50


@dataclass(frozen=True, slots=True)
class Access:
    """How to read a subject. `read` always works; `attribute` (a ProfileView attribute name),
    `standard_key` (of ProfileView.standard) or `custom_key` (of ProfileView.custom) let the commonest
    clauses read inline, without a call of their own: a call costs as much as the comparison."""

    read: Reader
    value_type: ValueType
    nullable: bool
    attribute: str | None = None
    standard_key: str | None = None
    custom_key: str | None = None
    # How expensive a read is, relative to an attribute: conjunctions test cheap clauses first.
    cost: int = COST_ATTRIBUTE


def access_for(subject: Subject) -> Access:
    if isinstance(subject, AttributeRef):
        key = subject.name

        def read_custom(profile: ProfileView, _: EvalContext) -> Any:
            return profile.custom.get(key)

        return Access(read_custom, ValueType.ANY, nullable=True, custom_key=key)
    spec = FIELDS[subject.name]
    nullable = spec.name not in NEVER_UNSET
    if isinstance(subject, FieldRef):
        if spec.name in _PROFILE_ATTRIBUTES:
            attribute = _PROFILE_ATTRIBUTES[spec.name]
            return Access(_attribute_reader(attribute), spec.type, nullable, attribute=attribute)
        if spec.name in STANDARD_ATTRIBUTES:
            return Access(
                _plain_reader(spec.name), spec.type, nullable, standard_key=spec.name, cost=COST_LOOKUP
            )
        return Access(_plain_reader(spec.name), spec.type, nullable, cost=_plain_cost(spec.name))
    read, cost = _call_reader(subject)
    return Access(read, spec.type, nullable, cost=cost)


def _attribute_reader(attribute: str) -> Reader:
    def read_attribute(profile: ProfileView, _: EvalContext) -> Any:
        return getattr(profile, attribute)

    return read_attribute


def _plain_cost(name: str) -> int:
    return COST_HASH if name == "random_bucket" else COST_LOOKUP


def _plain_reader(name: str) -> Reader:
    if name in STANDARD_ATTRIBUTES:

        def read_standard(profile: ProfileView, _: EvalContext) -> str | None:
            return profile.standard.get(name)

        return read_standard
    if name == "sessions":
        return lambda profile, _: profile.sessions.total
    if name == "purchases":
        return lambda profile, _: profile.purchases.total
    if name == "random_bucket":
        return lambda profile, _: random_bucket(profile.key)
    raise AssertionError(f"no reader for plain field {name}")


def _call_reader(subject: FunctionRef) -> tuple[Reader, int]:
    """The reader of a field with arguments, and its cost (windows sum over stored days)."""
    name = subject.name
    names = [argument.value for argument in subject.arguments if isinstance(argument, NameArgument)]
    windows = [argument for argument in subject.arguments if isinstance(argument, Window)]
    # A window is the day of `at` and the days-1 days before it.
    span = windows[0].days - 1 if windows else 0
    if name in ("sessions", "purchases", "pushes_received", "pushes_opened"):
        attribute = name

        def read_count_in_window(profile: ProfileView, context: EvalContext) -> int:
            last_day = context.at_day
            counts = getattr(profile, attribute)
            return counts.in_window(last_day - span, last_day)

        return read_count_in_window, COST_WINDOW
    if name == "spent":

        def read_spent_in_window(profile: ProfileView, context: EvalContext) -> float:
            last_day = context.at_day
            return profile.spent_in_window(last_day - span, last_day)

        return read_spent_in_window, COST_WINDOW
    key = names[0]
    if name == "events" and windows:

        def read_events_in_window(profile: ProfileView, context: EvalContext) -> int:
            stats = profile.events.get(key)
            if stats is None:
                return 0
            last_day = context.at_day
            return stats.counts.in_window(last_day - span, last_day)

        return read_events_in_window, COST_WINDOW
    if name == "events":

        def read_events(profile: ProfileView, _: EvalContext) -> int:
            stats = profile.events.get(key)
            return 0 if stats is None else stats.counts.total

        return read_events, COST_LOOKUP
    if name in ("first_event", "last_event"):
        attribute = name.removesuffix("_event")

        def read_event_instant(profile: ProfileView, _: EvalContext) -> float | None:
            stats = profile.events.get(key)
            return None if stats is None else getattr(stats, attribute)

        return read_event_instant, COST_LOOKUP
    if name == "in_segment":

        def read_membership(_: ProfileView, context: EvalContext) -> bool:
            return context.memberships[key]

        return read_membership, COST_LOOKUP
    if name == "received" and windows:

        def read_received_in_window(profile: ProfileView, context: EvalContext) -> bool:
            history = profile.campaigns.get(key)
            if history is None:
                return False
            last_day = context.at_day
            return history.receives.in_window(last_day - span, last_day) > 0

        return read_received_in_window, COST_WINDOW
    if name == "opened" and windows:

        def read_opened_in_window(profile: ProfileView, context: EvalContext) -> bool:
            history = profile.campaigns.get(key)
            if history is None:
                return False
            last_day = context.at_day
            return history.opens.in_window(last_day - span, last_day) > 0

        return read_opened_in_window, COST_WINDOW
    if name in _CAMPAIGN_FLAGS:
        flag = name

        def read_campaign_flag(profile: ProfileView, _: EvalContext) -> bool:
            history = profile.campaigns.get(key)
            return False if history is None else bool(getattr(history, flag))

        return read_campaign_flag, COST_LOOKUP
    if name == "last_received":

        def read_last_received(profile: ProfileView, _: EvalContext) -> float | None:
            history = profile.campaigns.get(key)
            return None if history is None else history.last_received

        return read_last_received, COST_LOOKUP
    if name == "last_opened":

        def read_last_opened(profile: ProfileView, _: EvalContext) -> float | None:
            history = profile.campaigns.get(key)
            return None if history is None else history.last_opened

        return read_last_opened, COST_LOOKUP
    raise AssertionError(f"no reader for {name}(...)")


# --- conditions ---------------------------------------------------------------------------------


def compile_condition(condition: Condition) -> Predicate:
    return _compile(condition)[0]


def _compile(condition: Condition) -> tuple[Predicate, int]:
    """The predicate and its estimated cost."""
    if isinstance(condition, Comparison):
        return compile_comparison(condition), access_for(condition.subject).cost
    if isinstance(condition, Not):
        inner = condition.operand
        if isinstance(inner, Comparison) and inner.operator in _COMPLEMENT:
            return _compile(dataclasses.replace(inner, operator=_COMPLEMENT[inner.operator]))
        negated, cost = _compile(inner)
        return (lambda profile, context: not negated(profile, context)), cost
    compiled = [_compile(operand) for operand in condition.operands]
    # Rules have no side effects, so the order of operands is free: test the cheap ones first and
    # let short-circuiting skip the window sums. (sorted is stable: ties keep the source order.)
    compiled.sort(key=lambda item: item[1])
    parts = [predicate for predicate, _ in compiled]
    cost = sum(cost for _, cost in compiled)
    if isinstance(condition, And):
        return _all_of(parts), cost
    assert isinstance(condition, Or)
    return _any_of(parts), cost


def _all_of(parts: list[Predicate]) -> Predicate:
    # Fixed arities avoid a loop and a tuple walk for the common short conjunctions.
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda profile, context: first(profile, context) and second(profile, context)
    if len(parts) == 3:
        first, second, third = parts
        return lambda profile, context: (
            first(profile, context) and second(profile, context) and third(profile, context)
        )
    if len(parts) == 4:
        first, second, third, fourth = parts
        return lambda profile, context: (
            first(profile, context)
            and second(profile, context)
            and third(profile, context)
            and fourth(profile, context)
        )
    frozen = tuple(parts)

    def all_of(profile: ProfileView, context: EvalContext) -> bool:
        # A loop, not all(generator): the generator costs more than the clauses it runs.
        for part in frozen:  # noqa: SIM110
            if not part(profile, context):
                return False
        return True

    return all_of


def _any_of(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda profile, context: first(profile, context) or second(profile, context)
    if len(parts) == 3:
        first, second, third = parts
        return lambda profile, context: (
            first(profile, context) or second(profile, context) or third(profile, context)
        )
    frozen = tuple(parts)

    def any_of(profile: ProfileView, context: EvalContext) -> bool:
        for part in frozen:  # noqa: SIM110 (as in all_of)
            if part(profile, context):
                return True
        return False

    return any_of


# --- comparisons --------------------------------------------------------------------------------


def compile_comparison(comparison: Comparison) -> Predicate:
    access = access_for(comparison.subject)
    if access.value_type is ValueType.ANY:
        assert access.custom_key is not None
        return _compile_custom(access.custom_key, comparison.operator, comparison.operand)
    return _compile_builtin(access, comparison.operator, comparison.operand)


def _compile_builtin(access: Access, operator: Operator, operand: Scalar | ListLiteral | None) -> Predicate:
    """A built-in field: the checker has made sure the literal has the field's type."""
    if operator in COMPARE:
        assert operand is not None
        assert not isinstance(operand, ListLiteral)
        compare = COMPARE[operator]
        # = and != need no guard: None == x is false and None != x is true, as dsl.md wants.
        guard_unset = access.nullable and operator.is_ordering
        if isinstance(operand, NowLiteral | RelativeTime):
            return _relative_clause(access, compare, _offset(operand), guard_unset)
        return _constant_clause(access, compare, _constant(operand), guard_unset)
    if operator in (Operator.IN, Operator.NOT_IN):
        assert isinstance(operand, ListLiteral)
        negate = operator is Operator.NOT_IN
        offsets = tuple(
            _offset(item) for item in operand.items if isinstance(item, NowLiteral | RelativeTime)
        )
        members = frozenset(
            _constant(item) for item in operand.items if not isinstance(item, NowLiteral | RelativeTime)
        )
        if offsets:
            return _relative_membership_clause(access.read, members, offsets, negate)
        return _membership_clause(access, members, negate)
    read = access.read
    if operator is Operator.CONTAINS:
        assert isinstance(operand, StringLiteral)
        needle = operand.value
        return _test_clause(read, lambda value, _: value is not None and needle in value)
    if operator is Operator.MATCHES:
        assert isinstance(operand, StringLiteral)
        search = re.compile(operand.value).search
        return _test_clause(read, lambda value, _: value is not None and search(value) is not None)
    if operator is Operator.IS_SET:
        return _test_clause(read, lambda value, _: value is not None)
    assert operator is Operator.IS_NOT_SET
    return _test_clause(read, lambda value, _: value is None)


def _constant(literal: Scalar) -> Any:
    """A literal that does not depend on `at`, as the value it compares with."""
    if isinstance(literal, InstantLiteral):
        return literal.epoch
    assert isinstance(literal, StringLiteral | NumberLiteral | BoolLiteral)
    return literal.value


def _offset(literal: NowLiteral | RelativeTime) -> float:
    return 0.0 if isinstance(literal, NowLiteral) else literal.offset_seconds


def _constant_clause(
    access: Access, compare: Callable[[Any, Any], bool], constant: Any, guard_unset: bool
) -> Predicate:
    attribute = access.attribute
    if attribute is not None:
        if guard_unset:

            def attribute_vs_constant_if_set(profile: ProfileView, _: EvalContext) -> bool:
                value = getattr(profile, attribute)
                return value is not None and compare(value, constant)

            return attribute_vs_constant_if_set

        return lambda profile, _: compare(getattr(profile, attribute), constant)
    key = access.standard_key
    if key is not None:
        if guard_unset:

            def standard_vs_constant_if_set(profile: ProfileView, _: EvalContext) -> bool:
                value = profile.standard.get(key)
                return value is not None and compare(value, constant)

            return standard_vs_constant_if_set

        return lambda profile, _: compare(profile.standard.get(key), constant)
    read = access.read
    if guard_unset:

        def value_vs_constant_if_set(profile: ProfileView, context: EvalContext) -> bool:
            value = read(profile, context)
            return value is not None and compare(value, constant)

        return value_vs_constant_if_set

    return lambda profile, context: compare(read(profile, context), constant)


def _relative_clause(
    access: Access, compare: Callable[[Any, Any], bool], offset: float, guard_unset: bool
) -> Predicate:
    attribute = access.attribute
    if attribute is not None:
        if guard_unset:

            def attribute_vs_relative_if_set(profile: ProfileView, context: EvalContext) -> bool:
                value = getattr(profile, attribute)
                return value is not None and compare(value, context.at + offset)

            return attribute_vs_relative_if_set

        return lambda profile, context: compare(getattr(profile, attribute), context.at + offset)
    read = access.read
    if guard_unset:

        def value_vs_relative_if_set(profile: ProfileView, context: EvalContext) -> bool:
            value = read(profile, context)
            return value is not None and compare(value, context.at + offset)

        return value_vs_relative_if_set

    return lambda profile, context: compare(read(profile, context), context.at + offset)


def _membership_clause(access: Access, members: frozenset[Any], negate: bool) -> Predicate:
    # None is never a member, so `in` is false and `not in` true on unset, as dsl.md wants.
    attribute = access.attribute
    if attribute is not None:
        if negate:
            return lambda profile, _: getattr(profile, attribute) not in members
        return lambda profile, _: getattr(profile, attribute) in members
    key = access.standard_key
    if key is not None:
        if negate:
            return lambda profile, _: profile.standard.get(key) not in members
        return lambda profile, _: profile.standard.get(key) in members
    read = access.read
    if negate:
        return lambda profile, context: read(profile, context) not in members
    return lambda profile, context: read(profile, context) in members


def _relative_membership_clause(
    read: Reader, members: frozenset[Any], offsets: tuple[float, ...], negate: bool
) -> Predicate:
    """`in [..]` on an instant with items such as `now` or `3 days ago`, which move with `at`."""

    def is_member(profile: ProfileView, context: EvalContext) -> bool:
        value = read(profile, context)
        found = value is not None and (
            value in members or any(value == context.at + offset for offset in offsets)
        )
        return found is not negate

    return is_member


def _test_clause(read: Reader, test: ValueTest) -> Predicate:
    return lambda profile, context: test(read(profile, context), context)


# --- custom attributes --------------------------------------------------------------------------
# The value may have any type. A value of another type than the literal's behaves as unset: false
# for every operator except !=, not in and is not set, which are true.


def _compile_custom(key: str, operator: Operator, operand: Scalar | ListLiteral | None) -> Predicate:
    # The two commonest custom clauses, `attr.x = true` and `attr.x = "text"`, read inline: `is`
    # on a bool and == on a string are already false for every other type.
    if operator in (Operator.EQ, Operator.NE) and isinstance(operand, BoolLiteral):
        flag = operand.value
        if operator is Operator.EQ:
            return lambda profile, _: profile.custom.get(key) is flag
        return lambda profile, _: profile.custom.get(key) is not flag
    if operator in (Operator.EQ, Operator.NE) and isinstance(operand, StringLiteral):
        text = operand.value
        if operator is Operator.EQ:
            return lambda profile, _: profile.custom.get(key) == text
        return lambda profile, _: profile.custom.get(key) != text
    if (
        operator in COMPARE
        and operator is not Operator.NE
        and isinstance(operand, NumberLiteral | StringLiteral)
    ):
        return _custom_compare_clause(key, COMPARE[operator], operand)
    if (
        operator in (Operator.IN, Operator.NOT_IN)
        and isinstance(operand, ListLiteral)
        and all(isinstance(item, StringLiteral) for item in operand.items)
    ):
        # The usual list, all strings: one type test, one set lookup (a list value is unhashable,
        # so the type test must come first).
        strings = frozenset(item.value for item in operand.items if isinstance(item, StringLiteral))
        if operator is Operator.IN:
            return lambda profile, _: isinstance(value := profile.custom.get(key), str) and value in strings
        return lambda profile, _: not (isinstance(value := profile.custom.get(key), str) and value in strings)
    negate = operator in (Operator.NE, Operator.NOT_IN, Operator.IS_NOT_SET)
    test = _custom_test(_COMPLEMENT[operator] if negate else operator, operand)
    if negate:
        return lambda profile, context: not test(profile.custom.get(key), context)
    return lambda profile, context: test(profile.custom.get(key), context)


def _custom_compare_clause(
    key: str, compare: Callable[[Any, Any], bool], literal: NumberLiteral | StringLiteral
) -> Predicate:
    """`attr.seats >= 10`, `attr.plan < "m"`: the type test and the comparison inline."""
    constant = literal.value
    if isinstance(literal, NumberLiteral):

        def custom_number(profile: ProfileView, _: EvalContext) -> bool:
            value = profile.custom.get(key)
            return type(value) in _NUMBER_TYPES and compare(value, constant)

        return custom_number

    def custom_string(profile: ProfileView, _: EvalContext) -> bool:
        value = profile.custom.get(key)
        return isinstance(value, str) and compare(value, constant)

    return custom_string


def _custom_test(operator: Operator, operand: Scalar | ListLiteral | None) -> ValueTest:
    """The positive test (=, <, in, contains, matches, is set) on a custom value."""
    if operator is Operator.IS_SET:
        return lambda value, _: value is not None
    if operator is Operator.IN:
        assert isinstance(operand, ListLiteral)
        return _custom_membership(operand)
    if operator is Operator.MATCHES:
        assert isinstance(operand, StringLiteral)
        search = re.compile(operand.value).search
        return lambda value, _: isinstance(value, str) and search(value) is not None
    assert operand is not None
    assert not isinstance(operand, ListLiteral)
    if operator is Operator.CONTAINS:
        return _custom_contains(operand)
    return _typed_compare(COMPARE[operator], operand, ordering=operator.is_ordering)


def _typed_compare(compare: Callable[[Any, Any], bool], literal: Scalar, ordering: bool) -> ValueTest:
    if isinstance(literal, StringLiteral):
        text = literal.value
        return lambda value, _: isinstance(value, str) and compare(value, text)
    if isinstance(literal, NumberLiteral):
        number = literal.value
        return lambda value, _: type(value) in _NUMBER_TYPES and compare(value, number)
    if isinstance(literal, BoolLiteral):
        if ordering:  # booleans have no order: no value can satisfy `attr.x < true`
            return lambda value, _: False
        flag = literal.value
        return lambda value, _: value is flag
    if isinstance(literal, InstantLiteral):
        epoch = literal.epoch
        return lambda value, _: type(value) is AttributeInstant and compare(value.epoch, epoch)
    offset = _offset(literal)
    return lambda value, context: (
        type(value) is AttributeInstant and compare(value.epoch, context.at + offset)
    )


def _custom_membership(operand: ListLiteral) -> ValueTest:
    """`in [..]` on a value of unknown type: each kind of value is looked up among the items of its
    own kind, so that true is not 1 and "1" is not 1."""
    strings = frozenset(item.value for item in operand.items if isinstance(item, StringLiteral))
    numbers = frozenset(item.value for item in operand.items if isinstance(item, NumberLiteral))
    flags = frozenset(item.value for item in operand.items if isinstance(item, BoolLiteral))
    epochs = frozenset(item.epoch for item in operand.items if isinstance(item, InstantLiteral))
    offsets = tuple(_offset(item) for item in operand.items if isinstance(item, NowLiteral | RelativeTime))

    def is_member(value: Any, context: EvalContext) -> bool:
        kind = type(value)
        if kind is bool:
            return value in flags
        if kind in _NUMBER_TYPES:
            return value in numbers
        if isinstance(value, str):
            return value in strings
        if kind is AttributeInstant:
            epoch = value.epoch
            return epoch in epochs or any(epoch == context.at + offset for offset in offsets)
        return False

    return is_member


def _custom_contains(literal: Scalar) -> ValueTest:
    """Membership in a list, or a substring of a string."""
    if isinstance(literal, StringLiteral):
        needle = literal.value
        return lambda value, _: isinstance(value, list | str) and needle in value
    element_equals = _typed_compare(operators.eq, literal, ordering=False)

    def list_contains(value: Any, context: EvalContext) -> bool:
        return isinstance(value, list) and any(element_equals(item, context) for item in value)

    return list_contains
