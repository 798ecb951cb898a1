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


# --- campaign blocks (campaigns.md) ---------------------------------------------------------------
# Every setting keeps the position of its value, so that the checker points at the number that is out
# of range rather than at the line. Values are kept as written (a percentage in percent, a duration
# in its unit) for the messages; the properties give what a sender uses (fractions, seconds).


@dataclass(frozen=True, slots=True)
class Duration:
    """`N UNIT` in a campaign setting: `30 days`, `72 hours`."""

    amount: int
    unit: TimeUnit
    text: str
    position: Position

    @property
    def seconds(self) -> int:
        return self.amount * self.unit.seconds


@dataclass(frozen=True, slots=True)
class Percentage:
    """`N%`, kept in percent as written; `fraction` is what a sender compares with."""

    percent: float
    text: str
    position: Position

    @property
    def fraction(self) -> float:
        return self.percent / 100


@dataclass(frozen=True, slots=True)
class ClockTime:
    """`HH:MM`; `minute_of_day` is None when the text is no time of day (the parser reports it)."""

    minute_of_day: int | None
    text: str
    position: Position


@dataclass(frozen=True, slots=True)
class SendOnEntry:
    """`send on entry`: a trigger for each user who enters the audience."""

    position: Position


@dataclass(frozen=True, slots=True)
class SendDaily:
    """`send daily at HH:MM UTC`: a trigger for each member, every day at that time."""

    time: ClockTime
    position: Position


@dataclass(frozen=True, slots=True)
class SendOnce:
    """`send once at INSTANT`: a trigger for each member at that instant."""

    at: InstantLiteral
    position: Position


Trigger: TypeAlias = SendOnEntry | SendDaily | SendOnce


@dataclass(frozen=True, slots=True)
class QuietHours:
    """`quiet hours FROM to TO`, the user's local time of day; [start, end) wraps past midnight when
    end < start."""

    start: ClockTime
    end: ClockTime
    position: Position


@dataclass(frozen=True, slots=True)
class Cap:
    """`cap N per DURATION`: at most `count` pushes, from any campaign, in the `period` before now."""

    count: int
    count_position: Position
    period: Duration
    position: Position


@dataclass(frozen=True, slots=True)
class Rate:
    """`rate N per minute`. `unit` is what was written after `per`: the checker accepts minute only."""

    per_minute: int
    count_position: Position
    unit: TimeUnit
    unit_position: Position
    position: Position


class ConversionKind(enum.Enum):
    EVENT = "event"
    PURCHASE = "purchase"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Conversion:
    """`conversion event "NAME" | purchase | session within DURATION`; `event_name` only for events."""

    kind: ConversionKind
    event_name: StringLiteral | None
    window: Duration
    position: Position


@dataclass(frozen=True, slots=True)
class Guardrail:
    """`guardrail opt_outs above P% after N sends`."""

    opt_outs_above: Percentage
    after_sends: int
    after_sends_position: Position
    position: Position


@dataclass(frozen=True, slots=True)
class TemplateText:
    """A Liquid template as written in a string: `text` is its value, `quoted` the literal with its
    quotes and escapes, `position` that of the opening quote (to place errors inside the string)."""

    text: str
    quoted: str
    position: Position


@dataclass(frozen=True, slots=True)
class PushTemplate:
    """`push { title ... body ... deep_link ... image ... }`; title and body are required (checker)."""

    title: TemplateText | None
    body: TemplateText | None
    deep_link: TemplateText | None
    image: TemplateText | None
    position: Position

    def templates(self) -> dict[str, TemplateText]:
        """The templates that are written, by setting name."""
        written = {"title": self.title, "body": self.body, "deep_link": self.deep_link, "image": self.image}
        return {name: template for name, template in written.items() if template is not None}


# campaigns.md: "expire after ... default 72 hours".
DEFAULT_EXPIRE_AFTER_SECONDS = 72 * TimeUnit.HOUR.seconds


@dataclass(frozen=True, slots=True)
class CampaignDef:
    """One `campaign NAME "Title" { ... }` block. A setting that is not written is None (its default
    is what campaigns.md says, see the properties); audience, trigger and push are required, which the
    checker enforces."""

    name: str
    title: str | None
    audience: str | None
    audience_position: Position | None
    trigger: Trigger | None
    reeligible_after: Duration | None  # None: once per user, ever
    holdout: Percentage | None
    quiet_hours: QuietHours | None
    cap: Cap | None
    rate: Rate | None
    expire_after: Duration | None
    conversion: Conversion | None
    guardrail: Guardrail | None
    push: PushTemplate | None
    source: str  # the block's text, as written
    position: Position  # of the `campaign` keyword
    name_position: Position

    @property
    def file(self) -> str:
        return self.position.file

    @property
    def holdout_fraction(self) -> float:
        return self.holdout.fraction if self.holdout is not None else 0.0

    @property
    def reeligible_after_seconds(self) -> int | None:
        return self.reeligible_after.seconds if self.reeligible_after is not None else None

    @property
    def expire_after_seconds(self) -> int:
        return self.expire_after.seconds if self.expire_after is not None else DEFAULT_EXPIRE_AFTER_SECONDS
