"""Why a user is (or is not) in a segment: every leaf clause with the value it saw.

A clause under `not` (or under an odd number of them) counts for the user when it is false: each
clause also carries how the rule reads it (`effective_clause`, e.g. `not attr.is_employee = true`)
and whether it counts for the user (`effective_result`), so that a list of clauses read top to
bottom says the same as the tree. `clause` and `result` stay the comparison's own.

Unlike the compiled predicate, this walks the whole condition without short-circuiting, so that
the reader sees every clause, and it is built for one profile at a time (support, debugging, the
HTTP "explain" route), not for scans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeAlias

from dsl.compiler import Access, access_for, compile_comparison
from dsl.fields import ValueType
from dsl.model import (
    And,
    BoolLiteral,
    Comparison,
    Condition,
    InstantLiteral,
    ListLiteral,
    Not,
    NowLiteral,
    NumberLiteral,
    Or,
    RelativeTime,
    Scalar,
    SegmentDef,
    StringLiteral,
)
from dsl.profile import AttributeInstant, ProfileView
from dsl.runtime import EvalContext
from dsl.timeutil import format_instant

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None


@dataclass(frozen=True, slots=True)
class ClauseExplanation:
    """One leaf clause: what it read (`value`, JSON-friendly: instants as RFC 3339 strings, unset as
    None), what it compared with (`threshold`, with relative times resolved at `at`), the result.

    `negated`: an odd number of `not`s apply to it, so that it counts for the user when `result`
    is false; `effective_clause` and `effective_result` are the clause and its result that way."""

    clause: str
    file: str
    line: int
    column: int
    value: JsonValue
    operator: str
    threshold: JsonValue
    result: bool
    negated: bool = False

    @property
    def effective_clause(self) -> str:
        return f"not {self.clause}" if self.negated else self.clause

    @property
    def effective_result(self) -> bool:
        return self.result != self.negated

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "clause": self.clause,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "value": self.value,
            "operator": self.operator,
            "threshold": self.threshold,
            "result": self.result,
            "negated": self.negated,
            "effective_clause": self.effective_clause,
            "effective_result": self.effective_result,
        }


@dataclass(frozen=True, slots=True)
class GroupExplanation:
    """`and`, `or` or `not` over the explanations of its operands."""

    operator: str
    result: bool
    operands: tuple[NodeExplanation, ...]

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "operator": self.operator,
            "result": self.result,
            "operands": [operand.to_json() for operand in self.operands],
        }


NodeExplanation: TypeAlias = ClauseExplanation | GroupExplanation


@dataclass(frozen=True, slots=True)
class Explanation:
    segment: str
    title: str | None
    at: float
    matched: bool
    condition: NodeExplanation

    @property
    def clauses(self) -> list[ClauseExplanation]:
        """The leaf clauses in source order."""
        found: list[ClauseExplanation] = []
        pending: list[NodeExplanation] = [self.condition]
        while pending:
            node = pending.pop()
            if isinstance(node, ClauseExplanation):
                found.append(node)
            else:
                pending.extend(reversed(node.operands))
        return found

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "segment": self.segment,
            "title": self.title,
            "at": instant_json(self.at),
            "matched": self.matched,
            "clauses": [clause.to_json() for clause in self.clauses],
            "condition": self.condition.to_json(),
        }


def explain_definition(definition: SegmentDef, profile: ProfileView, context: EvalContext) -> Explanation:
    """`context.memberships` must already hold the segments this one reads with in_segment."""
    condition = _explain(definition.condition, profile, context)
    matched = condition.result
    return Explanation(definition.name, definition.title, context.at, matched, condition)


def _explain(
    condition: Condition, profile: ProfileView, context: EvalContext, negated: bool = False
) -> NodeExplanation:
    """`negated`: an odd number of `not`s lie between the rule's root and `condition`."""
    if isinstance(condition, Comparison):
        return _explain_clause(condition, profile, context, negated)
    if isinstance(condition, Not):
        inner = _explain(condition.operand, profile, context, not negated)
        return GroupExplanation("not", not inner.result, (inner,))
    operands = tuple(_explain(operand, profile, context, negated) for operand in condition.operands)
    if isinstance(condition, And):
        return GroupExplanation("and", all(operand.result for operand in operands), operands)
    assert isinstance(condition, Or)
    return GroupExplanation("or", any(operand.result for operand in operands), operands)


def _explain_clause(
    comparison: Comparison, profile: ProfileView, context: EvalContext, negated: bool
) -> ClauseExplanation:
    access: Access = access_for(comparison.subject)
    value = access.read(profile, context)
    result = compile_comparison(comparison)(profile, context)
    return ClauseExplanation(
        clause=comparison.text,
        file=comparison.position.file,
        line=comparison.position.line,
        column=comparison.position.column,
        value=value_json(value, access.value_type),
        operator=comparison.operator.value,
        threshold=_threshold_json(comparison.operand, context),
        result=result,
        negated=negated,
    )


def instant_json(epoch: float) -> JsonValue:
    """RFC 3339, or the number itself when it is no representable date (a corrupt timestamp must
    not break an explanation)."""
    try:
        return format_instant(epoch)
    except (OverflowError, ValueError, OSError):
        return _number_json(epoch)


def _number_json(number: float) -> JsonValue:
    # JSON has no NaN or infinities.
    return number if math.isfinite(number) else str(number)


def value_json(value: Any, value_type: ValueType) -> JsonValue:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, AttributeInstant):
        return instant_json(value.epoch)
    if isinstance(value, int | float):
        if value_type is ValueType.INSTANT:
            return instant_json(value)
        return _number_json(value) if isinstance(value, float) else value
    if isinstance(value, list):
        return [value_json(item, ValueType.ANY) for item in value]
    return str(value)


def _threshold_json(operand: Scalar | ListLiteral | None, context: EvalContext) -> JsonValue:
    if operand is None:
        return None
    if isinstance(operand, ListLiteral):
        return [_threshold_json(item, context) for item in operand.items]
    if isinstance(operand, StringLiteral | BoolLiteral):
        return operand.value
    if isinstance(operand, NumberLiteral):
        value = operand.value
        return _number_json(value) if isinstance(value, float) else value
    if isinstance(operand, InstantLiteral):
        return instant_json(operand.epoch)
    if isinstance(operand, NowLiteral):
        return instant_json(context.at)
    assert isinstance(operand, RelativeTime)
    return instant_json(context.at + operand.offset_seconds)
