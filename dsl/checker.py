"""Everything that can be wrong with parsed segments and campaigns, found before anything runs (dsl.md, Semantics:
"errors found before anything runs, never at evaluation time")."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dsl.diagnostics import Diagnostic, did_you_mean, source_line
from dsl.fields import FIELDS, MAX_WINDOW_DAYS, Shape, ValueType
from dsl.model import (
    AttributeRef,
    BoolLiteral,
    CampaignDef,
    Comparison,
    Duration,
    FieldRef,
    FunctionRef,
    ListLiteral,
    NameArgument,
    NumberLiteral,
    Operator,
    Percentage,
    Position,
    RelativeTime,
    Scalar,
    SegmentDef,
    StringLiteral,
    Subject,
    TemplateText,
    TimeUnit,
    Window,
    iter_comparisons,
)
from dsl.parser import ParsedSource
from dsl.templates import check_template

SEGMENT_NAME = re.compile(r"[a-z][a-z0-9_]*")
# `N UNIT ago` further than this is a typo, and would overflow the float that holds the instant.
MAX_RELATIVE_DAYS = 100_000

_HINTS = {
    ValueType.STRING: "compare it with a string in double quotes",
    ValueType.NUMBER: "compare it with a number",
    ValueType.BOOL: "compare it with true or false",
    ValueType.INSTANT: (
        "compare it with a date (2026-11-01), an instant (2026-11-01T10:30:00Z), now,"
        " or a relative time (7 days ago)"
    ),
}
_BARE_EXAMPLES = {
    ValueType.STRING: '{name} = "..."',
    ValueType.NUMBER: "{name} >= 1",
    ValueType.INSTANT: "{name} >= 7 days ago",
}


def literal_type(literal: Scalar) -> ValueType:
    if isinstance(literal, StringLiteral):
        return ValueType.STRING
    if isinstance(literal, NumberLiteral):
        return ValueType.NUMBER
    if isinstance(literal, BoolLiteral):
        return ValueType.BOOL
    return ValueType.INSTANT


def call_shape(subject: FunctionRef) -> Shape | None:
    kinds = tuple(type(argument) for argument in subject.arguments)
    if kinds == (Window,):
        return Shape.WINDOW
    if kinds == (NameArgument,):
        return Shape.NAME
    if kinds == (NameArgument, Window):
        return Shape.NAME_WINDOW
    return None


def segment_dependencies(definition: SegmentDef) -> list[tuple[str, Position]]:
    """The segments this one reads through in_segment("NAME"), with where it does so."""
    found: list[tuple[str, Position]] = []
    for comparison in iter_comparisons(definition.condition):
        subject = comparison.subject
        if isinstance(subject, FunctionRef) and subject.name == "in_segment":
            for argument in subject.arguments:
                if isinstance(argument, NameArgument):
                    found.append((argument.value, subject.position))
    return found


@dataclass(slots=True)
class _Checker:
    texts: dict[str, str]
    diagnostics: list[Diagnostic]

    def error(self, position: Position, message: str) -> None:
        text = self.texts.get(position.file, "")
        self.diagnostics.append(Diagnostic.at(position, message, source_line(text, position.line)))

    # --- one definition ---

    def check_definition(self, definition: SegmentDef, known_segments: set[str]) -> None:
        if not SEGMENT_NAME.fullmatch(definition.name):
            self.error(
                definition.name_position,
                f"bad segment name {definition.name}: use lower-case letters, digits and _,"
                " starting with a letter",
            )
        for comparison in iter_comparisons(definition.condition):
            self.check_comparison(comparison, known_segments)

    def check_comparison(self, comparison: Comparison, known_segments: set[str]) -> None:
        subject = comparison.subject
        self.check_operand_literals(comparison)
        value_type = self.check_subject(subject, known_segments)
        if value_type is None:
            return  # unknown field or bad arguments: already reported, types cannot be judged
        if value_type is ValueType.ANY:
            return
        operator, operand = comparison.operator, comparison.operand
        name = _subject_name(subject)
        if comparison.implicit:
            if value_type is not ValueType.BOOL:
                # The call as written (`pushes_opened(last 30 days) >= 1`): the bare name may not
                # even be a field (pushes_opened has no lifetime form).
                written = comparison.text if isinstance(subject, FunctionRef) else name
                example = _BARE_EXAMPLES[value_type].format(name=written)
                self.error(
                    comparison.position,
                    f"{name} is {value_type.with_article}, not a condition; compare it, e.g. {example}",
                )
            return
        if operator.is_ordering or operator in (Operator.EQ, Operator.NE):
            if operator.is_ordering and value_type is ValueType.BOOL:
                self.error(
                    comparison.operator_position,
                    f"{operator.value} does not apply to {name}, which is a bool; use = or !=",
                )
                return
            assert operand is not None
            assert not isinstance(operand, ListLiteral)
            self.expect_type(name, value_type, operand)
        elif operator in (Operator.IN, Operator.NOT_IN):
            assert isinstance(operand, ListLiteral)
            for item in operand.items:
                self.expect_type(name, value_type, item)
        elif operator is Operator.CONTAINS:
            if value_type is not ValueType.STRING:
                self.error(
                    comparison.operator_position,
                    f"contains applies to strings and lists, and {name} is {value_type.with_article}",
                )
                return
            assert operand is not None
            assert not isinstance(operand, ListLiteral)
            self.expect_type(name, value_type, operand)
        elif operator is Operator.MATCHES and value_type is not ValueType.STRING:
            self.error(
                comparison.operator_position,
                f"matches applies to strings, and {name} is {value_type.with_article}",
            )

    def expect_type(self, name: str, expected: ValueType, literal: Scalar) -> None:
        found = literal_type(literal)
        if found is not expected:
            self.error(
                literal.position,
                f"{name} is {expected.with_article}, not {found.with_article}; {_HINTS[expected]}",
            )

    def check_operand_literals(self, comparison: Comparison) -> None:
        """What is wrong with the right-hand side whatever the field: relative times out of range,
        regular expressions that do not compile."""
        operand = comparison.operand
        literals: Sequence[Scalar]
        if isinstance(operand, ListLiteral):
            literals = operand.items
        elif operand is None:
            literals = ()
        else:
            literals = (operand,)
        for literal in literals:
            if isinstance(literal, RelativeTime):
                self.check_relative_time(literal)
        if comparison.operator is Operator.MATCHES and isinstance(operand, StringLiteral):
            try:
                re.compile(operand.value)
            except (re.error, RecursionError, OverflowError, ValueError) as problem:
                self.error(operand.position, f"bad regular expression: {_regex_problem(problem)}")

    def check_relative_time(self, relative: RelativeTime) -> None:
        if relative.amount < 0:
            direction = "from now" if relative.direction < 0 else "ago"
            self.error(
                relative.position,
                f"a relative time counts from 0 up: write {-relative.amount} "
                f"{relative.unit.name.lower()}s {direction} instead",
            )
        elif relative.amount * relative.unit.seconds > MAX_RELATIVE_DAYS * TimeUnit.DAY.seconds:
            self.error(relative.position, f"{relative.text} is too far: at most {MAX_RELATIVE_DAYS} days")

    # --- subjects ---

    def check_subject(self, subject: Subject, known_segments: set[str]) -> ValueType | None:
        if isinstance(subject, AttributeRef):
            if not subject.name:
                self.error(subject.position, "an attribute name must not be empty")
                return None
            return ValueType.ANY
        spec = FIELDS.get(subject.name)
        if spec is None:
            self.error(subject.position, f"unknown field {subject.name}" + did_you_mean(subject.name, FIELDS))
            return None
        if isinstance(subject, FieldRef):
            if not spec.plain:
                self.error(subject.position, f"{spec.name} needs arguments: write {spec.usage()}")
                return None
            return spec.type
        if not spec.callable:
            self.error(subject.position, f"{spec.name} takes no arguments: write {spec.name}")
            return None
        shape = call_shape(subject)
        if shape is None or shape not in spec.shapes:
            self.error(subject.position, f"wrong arguments for {spec.name}: write {spec.usage()}")
            return None
        valid = True
        for argument in subject.arguments:
            if isinstance(argument, Window):
                valid = self.check_window(argument) and valid
            elif not argument.value:
                self.error(argument.position, f"{spec.name} needs a name, not an empty string")
                valid = False
            elif spec.name == "in_segment" and argument.value not in known_segments:
                self.error(
                    argument.position,
                    f'unknown segment "{argument.value}"'
                    + did_you_mean(argument.value, sorted(known_segments), quote=True),
                )
                valid = False
        return spec.type if valid else None

    def check_window(self, window: Window) -> bool:
        if window.unit not in (TimeUnit.DAY, TimeUnit.WEEK):
            self.error(window.position, "a window counts whole days: write last N days or last N weeks")
            return False
        if window.amount < 1:
            self.error(window.position, "a window covers at least 1 day (last 1 day is today so far)")
            return False
        if window.days > MAX_WINDOW_DAYS:
            detail = f"{window.text} is {window.days} days; " if window.unit is TimeUnit.WEEK else ""
            self.error(window.position, f"window too long: {detail}at most {MAX_WINDOW_DAYS} days (12 weeks)")
            return False
        return True

    # --- across definitions ---

    def check_unique_names(self, definitions: Sequence[SegmentDef]) -> None:
        first_seen: dict[str, SegmentDef] = {}
        for definition in definitions:
            earlier = first_seen.setdefault(definition.name, definition)
            if earlier is not definition:
                self.error(
                    definition.name_position,
                    f"duplicate segment {definition.name}; first defined at {earlier.name_position}",
                )

    def check_cycles(self, definitions: Sequence[SegmentDef]) -> None:
        edges: dict[str, list[tuple[str, Position]]] = {}
        for definition in definitions:
            edges.setdefault(definition.name, segment_dependencies(definition))
        order = {definition.name: index for index, definition in enumerate(definitions)}
        for component in _cycles(edges):
            start = min(component, key=lambda name: order.get(name, len(order)))
            path, position = _cycle_path(start, component, edges)
            self.error(position, "in_segment cycle: " + " -> ".join(path))

    # --- campaigns (campaigns.md, "Campaign blocks") ---

    def check_campaign(self, campaign: CampaignDef, known_segments: set[str]) -> None:
        if not SEGMENT_NAME.fullmatch(campaign.name):
            self.error(
                campaign.name_position,
                f"bad campaign name {campaign.name}: use lower-case letters, digits and _,"
                " starting with a letter",
            )
        self.check_audience(campaign, known_segments)
        if campaign.trigger is None:
            self.error(
                campaign.name_position,
                f"campaign {campaign.name} has no trigger: add send on entry, send daily at HH:MM UTC"
                " or send once at INSTANT",
            )
        if campaign.reeligible_after is not None:
            self.check_duration("reeligible after", campaign.reeligible_after, MINUTE, 720 * DAY, "720 days")
        if campaign.holdout is not None:
            self.check_percentage("holdout", campaign.holdout, 0, 50)
        if campaign.quiet_hours is not None:
            start, end = campaign.quiet_hours.start, campaign.quiet_hours.end
            if start.minute_of_day is not None and start.minute_of_day == end.minute_of_day:
                self.error(end.position, f"quiet hours from {start.text} to {end.text}: the two must differ")
        if campaign.cap is not None:
            cap = campaign.cap
            self.check_count("cap", cap.count, cap.count_position, 1, 100)
            self.check_duration("cap period", cap.period, HOUR, 30 * DAY, "30 days")
        if campaign.rate is not None:
            rate = campaign.rate
            self.check_count("rate", rate.per_minute, rate.count_position, 1, 100_000)
            if rate.unit is not TimeUnit.MINUTE:
                self.error(rate.unit_position, "rate counts sends per minute: write rate N per minute")
        if campaign.expire_after is not None:
            self.check_duration("expire after", campaign.expire_after, MINUTE, 7 * DAY, "7 days")
        if campaign.conversion is not None:
            conversion = campaign.conversion
            if conversion.event_name is not None and not conversion.event_name.value:
                self.error(
                    conversion.event_name.position, "conversion event needs a name, not an empty string"
                )
            self.check_duration("conversion window", conversion.window, MINUTE, 30 * DAY, "30 days")
        if campaign.guardrail is not None:
            guardrail = campaign.guardrail
            self.check_percentage("guardrail", guardrail.opt_outs_above, 0.1, 100)
            self.check_count(
                "guardrail sends", guardrail.after_sends, guardrail.after_sends_position, 1, 1_000_000
            )
        self.check_push(campaign)

    def check_audience(self, campaign: CampaignDef, known_segments: set[str]) -> None:
        if campaign.audience is None or campaign.audience_position is None:
            self.error(
                campaign.name_position, f"campaign {campaign.name} has no audience: add audience SEGMENT"
            )
        elif campaign.audience not in known_segments:
            self.error(
                campaign.audience_position,
                f"unknown segment {campaign.audience}"
                + did_you_mean(campaign.audience, sorted(known_segments)),
            )

    def check_push(self, campaign: CampaignDef) -> None:
        push = campaign.push
        if push is None:
            self.error(
                campaign.name_position,
                f"campaign {campaign.name} has no push: add push {{ title ... body ... }}",
            )
            return
        for required, template in (("title", push.title), ("body", push.body)):
            if template is None:
                self.error(push.position, f'push has no {required}: add {required} "..."')
        for template in push.templates().values():
            self.check_template_text(template)

    def check_template_text(self, template: TemplateText) -> None:
        for problem in check_template(template.text).problems:
            self.error(_position_in_string(template, problem.offset), problem.message)

    def check_duration(self, name: str, duration: Duration, low: int, high: int, high_text: str) -> None:
        if not low <= duration.seconds <= high:
            low_text = "1 hour" if low == HOUR else "1 minute"
            self.error(
                duration.position, f"{name} {duration.text} is out of range: {low_text} to {high_text}"
            )

    def check_percentage(self, name: str, percentage: Percentage, low: float, high: float) -> None:
        if not low <= percentage.percent <= high:
            self.error(
                percentage.position, f"{name} {percentage.text} is out of range: {low:g}% to {high:g}%"
            )

    def check_count(self, name: str, count: int, position: Position, low: int, high: int) -> None:
        if not low <= count <= high:
            self.error(position, f"{name} {count} is out of range: {low:,} to {high:,}")

    def check_unique_campaigns(self, campaigns: Sequence[CampaignDef]) -> None:
        first_seen: dict[str, CampaignDef] = {}
        for campaign in campaigns:
            earlier = first_seen.setdefault(campaign.name, campaign)
            if earlier is not campaign:
                self.error(
                    campaign.name_position,
                    f"duplicate campaign {campaign.name}; first defined at {earlier.name_position}",
                )


MINUTE = TimeUnit.MINUTE.seconds
HOUR = TimeUnit.HOUR.seconds
DAY = TimeUnit.DAY.seconds


def _position_in_string(template: TemplateText, offset: int) -> Position:
    """Where character `offset` of a template's value is in the file. Strings hold one line, so only
    the column moves: past the opening quote and each escape written before that character."""
    quoted = template.quoted
    index = 1  # just after the opening quote
    remaining = offset
    while remaining > 0 and index < len(quoted) - 1:
        escaped = quoted[index] == "\\" and quoted[index + 1] in '"\\' and index + 1 < len(quoted) - 1
        index += 2 if escaped else 1
        remaining -= 1
    start = template.position
    return Position(start.file, start.line, start.column + index)


def _subject_name(subject: Subject) -> str:
    if isinstance(subject, AttributeRef):
        return f"attr.{subject.name}"
    return subject.name


def _regex_problem(problem: BaseException) -> str:
    if isinstance(problem, re.error):
        where = f" at position {problem.pos}" if problem.pos is not None else ""
        return f"{problem.msg}{where}"
    return "too complex"


def _cycles(edges: dict[str, list[tuple[str, Position]]]) -> list[set[str]]:
    """Strongly connected components that contain a cycle (Tarjan's algorithm, iteratively, so
    that a long chain of segments cannot exhaust the recursion limit)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in edges:
        if root in index_of:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, next_edge = work.pop()
            if next_edge == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = [target for target, _ in edges.get(node, []) if target in edges]
            if next_edge < len(targets):
                work.append((node, next_edge + 1))
                target = targets[next_edge]
                if target not in index_of:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index_of[target])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index_of[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                self_loop = any(target == node for target, _ in edges.get(node, []))
                if len(component) > 1 or self_loop:
                    found.append(component)
    return found


def _cycle_path(
    start: str, component: set[str], edges: dict[str, list[tuple[str, Position]]]
) -> tuple[list[str], Position]:
    """A shortest cycle from `start` back to itself (breadth first inside its component), and the
    in_segment call in `start` that begins it."""
    parent: dict[str, str] = {}
    seen = {start}
    frontier = [start]
    while frontier:
        next_frontier: list[str] = []
        for node in frontier:
            for target, _ in edges.get(node, []):
                if target == start:
                    chain = [node]
                    while chain[-1] != start:
                        chain.append(parent[chain[-1]])
                    path = [*reversed(chain), start]
                    return path, _first_edge_position(start, path[1], edges)
                if target in component and target not in seen:
                    seen.add(target)
                    parent[target] = node
                    next_frontier.append(target)
        frontier = next_frontier
    raise AssertionError(f"{start} is in a cycle component but no cycle returns to it")


def _first_edge_position(source: str, target: str, edges: dict[str, list[tuple[str, Position]]]) -> Position:
    return next(position for name, position in edges[source] if name == target)


def check_sources(parsed_sources: Sequence[ParsedSource]) -> list[Diagnostic]:
    """All problems in a set of parsed files, taken together (names are unique across files and
    in_segment may name a segment of any file). Includes the parse diagnostics."""
    texts = {parsed.file: parsed.text for parsed in parsed_sources}
    checker = _Checker(texts=texts, diagnostics=[])
    definitions = [definition for parsed in parsed_sources for definition in parsed.definitions]
    known = {definition.name for definition in definitions}
    known.update(name for parsed in parsed_sources for name in parsed.unparsed_names)
    for parsed in parsed_sources:
        checker.diagnostics.extend(parsed.diagnostics)
    checker.check_unique_names(definitions)
    for definition in definitions:
        checker.check_definition(definition, known)
    checker.check_cycles(definitions)
    campaigns = [campaign for parsed in parsed_sources for campaign in parsed.campaigns]
    checker.check_unique_campaigns(campaigns)
    for campaign in campaigns:
        checker.check_campaign(campaign, known)
    return checker.diagnostics
