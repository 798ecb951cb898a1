"""The parsed segment language as typed, immutable values.

The parser builds these from Lark's tree; the checker, the compiler and `explain` read them and never
see Lark. Every node carries the position it came from so that any later stage can point at it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Position:
    """Where something starts in a source file; line and column count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# --- literals ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StringLiteral:
    value: str
    position: Position


@dataclass(frozen=True, slots=True)
class NumberLiteral:
    """An integer or a decimal; the two compare with each other, never with booleans."""

    value: int | float
    position: Position


@dataclass(frozen=True, slots=True)
class BoolLiteral:
    value: bool
    position: Position


@dataclass(frozen=True, slots=True)
class InstantLiteral:
    """A fixed instant: a date (midnight UTC) or an RFC 3339 instant, as epoch seconds."""

    epoch: float
    text: str
    position: Position


@dataclass(frozen=True, slots=True)
class NowLiteral:
    """`now`: the evaluation instant `at`."""

    position: Position


class TimeUnit(enum.Enum):
    MINUTE = 60
    HOUR = 3_600
    DAY = 86_400
    WEEK = 7 * 86_400

    @property
    def seconds(self) -> int:
        return self.value


@dataclass(frozen=True, slots=True)
class RelativeTime:
    """`N UNIT ago` (direction -1) or `N UNIT from now` (+1): an exact instant relative to `at`."""

    amount: int
    unit: TimeUnit
    direction: int
    text: str
    position: Position

    @property
    def offset_seconds(self) -> float:
        """What to add to `at`; negative in the past."""
        return float(self.direction * self.amount * self.unit.seconds)


# A single value on the right of a comparison.
Scalar: TypeAlias = StringLiteral | NumberLiteral | BoolLiteral | InstantLiteral | NowLiteral | RelativeTime


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple[Scalar, ...]
    position: Position


# --- what a comparison reads --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """`last N days` / `last N weeks`: the day of `at` and the N−1 (or 7N−1) days before it."""

    amount: int
    unit: TimeUnit
    text: str
    position: Position

    @property
    def days(self) -> int:
        return self.amount * (7 if self.unit is TimeUnit.WEEK else 1)


@dataclass(frozen=True, slots=True)
class NameArgument:
    """A quoted name passed to a function: an event, a campaign, a segment."""

    value: str
    position: Position


Argument: TypeAlias = NameArgument | Window


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A built-in field read without parentheses: `sessions`, `country`, `last_session`."""

    name: str
    position: Position


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A built-in field read with arguments: `sessions(last 30 days)`, `received("welcome")`."""

    name: str
    arguments: tuple[Argument, ...]
    position: Position


@dataclass(frozen=True, slots=True)
class AttributeRef:
    """A custom attribute, `attr.NAME` or `attr["any name"]`; its type is whatever the app sent."""

    name: str
    position: Position


Subject: TypeAlias = FieldRef | FunctionRef | AttributeRef


# --- conditions ---------------------------------------------------------------------------------


class Operator(enum.Enum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"
    CONTAINS = "contains"
    MATCHES = "matches"
    IS_SET = "is set"
    IS_NOT_SET = "is not set"

    @property
    def is_ordering(self) -> bool:
        return self in _ORDERING


_ORDERING = frozenset({Operator.LT, Operator.LE, Operator.GT, Operator.GE})


@dataclass(frozen=True, slots=True)
class Comparison:
    """One leaf clause. `operand` is a Scalar for =, <, contains, matches; a ListLiteral for in /
    not in; None for is set / is not set. A bare boolean (`received("x")`) is `= true` with
    `implicit` set, and its `text` is what the user wrote."""

    subject: Subject
    operator: Operator
    operand: Scalar | ListLiteral | None
    text: str
    position: Position
    operator_position: Position
    implicit: bool = False


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Condition, ...]
    position: Position


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Condition, ...]
    position: Position


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition
    position: Position


Condition: TypeAlias = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class SegmentDef:
    name: str
    title: str | None
    condition: Condition
    source: str  # the definition's text, as written
    position: Position  # of the `segment` keyword
    name_position: Position

    @property
    def file(self) -> str:
        return self.position.file


def iter_comparisons(condition: Condition) -> list[Comparison]:
    """The leaf clauses, in source order."""
    found: list[Comparison] = []
    pending: list[Condition] = [condition]
    while pending:
        node = pending.pop()
        if isinstance(node, Comparison):
            found.append(node)
        elif isinstance(node, Not):
            pending.append(node.operand)
        else:
            pending.extend(reversed(node.operands))
    return found
