"""Text to `dsl.model`: Lark parses (segments and campaign blocks, dsl/grammar.lark), this module turns
its tree into typed values; dsl/syntax_errors.py words its exceptions. Nothing here raises for bad
input; problems come back as a list."""

from __future__ import annotations

import difflib
import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import TypeVar

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from dsl.diagnostics import Diagnostic, source_line
from dsl.model import (
    And,
    Argument,
    AttributeRef,
    BoolLiteral,
    CampaignDef,
    Cap,
    ClockTime,
    Comparison,
    Condition,
    Conversion,
    ConversionKind,
    Duration,
    FieldRef,
    FunctionRef,
    Guardrail,
    InstantLiteral,
    ListLiteral,
    NameArgument,
    Not,
    NowLiteral,
    NumberLiteral,
    Operator,
    Or,
    Percentage,
    Position,
    PushTemplate,
    QuietHours,
    Rate,
    RelativeTime,
    Scalar,
    SegmentDef,
    SendDaily,
    SendOnce,
    SendOnEntry,
    StringLiteral,
    Subject,
    TemplateText,
    TimeUnit,
    Trigger,
    Window,
)
from dsl.syntax_errors import syntax_diagnostic
from dsl.timeutil import SECONDS_PER_DAY, InstantError, parse_date, parse_instant


@functools.cache
def _lark() -> Lark:
    """Built once per process: building the LALR tables is the slow part of parsing."""
    grammar = resources.files("dsl").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


@dataclass(slots=True)
class ParsedSource:
    file: str
    text: str
    definitions: list[SegmentDef] = field(default_factory=list)
    campaigns: list[CampaignDef] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # Names of segments whose block has a syntax error: known to exist, so that reading them with
    # in_segment elsewhere (or naming them as a campaign's audience) is not reported as well.
    unparsed_names: set[str] = field(default_factory=set)


def parse_source(text: str, file: str) -> ParsedSource:
    """Parse one file. On a syntax error, the blocks that do parse are still returned (so that their
    own errors are reported too and their names are known to other files)."""
    parsed = ParsedSource(file=file, text=text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as error:
        first = syntax_diagnostic(error, text, file, _lark())
        parsed.diagnostics.append(first)
        _recover_blocks(parsed, text, after=(first.line, first.column))
        return parsed
    _build(parsed, tree, text)
    return parsed


def _build(parsed: ParsedSource, tree: Tree, text: str) -> None:
    builder = _ModelBuilder(text, parsed.file)
    for definition_tree in tree.children:
        if not isinstance(definition_tree, Tree):
            continue
        if definition_tree.data == "campaign_definition":
            parsed.campaigns.append(builder.campaign(definition_tree))
            continue
        too_deep = _deeper_than(definition_tree, MAX_NESTING)
        if too_deep is not None:
            position = Position(parsed.file, too_deep.meta.line, too_deep.meta.column)
            builder.diagnostics.append(
                Diagnostic.at(
                    position,
                    f"too deeply nested: at most {MAX_NESTING} levels",
                    source_line(text, position.line),
                )
            )
            continue
        parsed.definitions.append(builder.segment(definition_tree))
    parsed.diagnostics.extend(builder.diagnostics)


# The later stages walk conditions recursively; this keeps them far from Python's recursion limit.
MAX_NESTING = 100


def _deeper_than(tree: Tree, limit: int) -> Tree | None:
    """The first subtree found below `limit` levels, if any (walked without recursion)."""
    pending: list[tuple[Tree, int]] = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return node
        pending.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return None


# --- recovery -----------------------------------------------------------------------------------

# After a syntax error, each top-level block is parsed on its own. A block starts with its keyword at
# the beginning of a line; a word close to a block keyword (`segmnet`, `campain`) starts one too, so
# that a misspelt block is reported alone and does not take its neighbours down with it.
_BLOCK_KEYWORDS = ("segment", "campaign")
# `KEYWORD NAME` at the start of a line: `segment: x` inside a broken block starts nothing.
_LINE_START_WORD = re.compile(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]+[A-Za-z_]", re.MULTILINE)
_SEGMENT_HEADER = re.compile(r"[ \t]*segment\s+([A-Za-z_][A-Za-z0-9_]*)")


def _is_block_keyword(word: str) -> bool:
    return word in _BLOCK_KEYWORDS or bool(difflib.get_close_matches(word, _BLOCK_KEYWORDS, n=1, cutoff=0.75))


def _recover_blocks(parsed: ParsedSource, text: str, after: tuple[int, int]) -> None:
    """Parse each top-level block on its own, padded with newlines so that positions stay true.
    Errors up to the first one (already reported) are consequences of it and are dropped."""
    starts = [match.start() for match in _LINE_START_WORD.finditer(text) if _is_block_keyword(match.group(1))]
    if not starts:
        return
    bounds = [*starts, len(text)]
    for start, end in itertools.pairwise(bounds):
        padded = "\n" * text.count("\n", 0, start) + text[start:end]
        try:
            tree = _lark().parse(padded)
        except UnexpectedInput as error:
            diagnostic = syntax_diagnostic(error, padded, parsed.file, _lark())
            if (diagnostic.line, diagnostic.column) > after:
                parsed.diagnostics.append(diagnostic)
            header = _SEGMENT_HEADER.match(text, start, end)
            if header:
                parsed.unparsed_names.add(header.group(1))
            continue
        _build(parsed, tree, padded)


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


# --- tree to model ------------------------------------------------------------------------------

_UNITS = {
    "minute": TimeUnit.MINUTE,
    "hour": TimeUnit.HOUR,
    "day": TimeUnit.DAY,
    "week": TimeUnit.WEEK,
}
_OPERATORS = {operator.value: operator for operator in Operator}


def unescape(quoted: str) -> str:
    r"""The value of a string literal. `\"` and `\\` are escapes; any other backslash stays as
    written, so that regular expressions read naturally (`matches "^\d+$"`)."""
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body) and body[index + 1] in '"\\':
            out.append(body[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


_Built = TypeVar("_Built")


class _ModelBuilder:
    """One pass over Lark's tree. Literal values that cannot be converted (an impossible date, an
    integer with thousands of digits) are reported here; everything else is the checker's job."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    # positions

    def _position(self, node: Tree | Token) -> Position:
        if isinstance(node, Token):
            return Position(self.file, node.line or 1, node.column or 1)
        return Position(self.file, node.meta.line, node.meta.column)

    def _source(self, node: Tree) -> str:
        return self.text[node.meta.start_pos : node.meta.end_pos]

    def _error(self, position: Position, message: str) -> None:
        self.diagnostics.append(Diagnostic.at(position, message, source_line(self.text, position.line)))

    # definitions and conditions

    def segment(self, tree: Tree) -> SegmentDef:
        name_token, title_token, body = tree.children
        assert isinstance(name_token, Token)
        assert isinstance(body, Tree)
        title = unescape(title_token) if isinstance(title_token, Token) else None
        return SegmentDef(
            name=str(name_token),
            title=title,
            condition=self._condition(body),
            source=self._source(tree),
            position=self._position(tree),
            name_position=self._position(name_token),
        )

    def _condition(self, tree: Tree) -> Condition:
        kind = tree.data
        if kind in ("or_expression", "and_expression"):
            node_type = Or if kind == "or_expression" else And
            operands: list[Condition] = []
            for child in tree.children:
                assert isinstance(child, Tree)
                operand = self._condition(child)
                # (a and b) and c is one conjunction: one closure fewer when compiled.
                if isinstance(operand, node_type):
                    operands.extend(operand.operands)
                else:
                    operands.append(operand)
            return node_type(tuple(operands), self._position(tree))
        if kind == "negation":
            (inner,) = tree.children
            assert isinstance(inner, Tree)
            return Not(self._condition(inner), self._position(tree))
        return self._comparison(tree)

    def _comparison(self, tree: Tree) -> Comparison:
        kind = tree.data
        subject_tree = tree.children[0]
        assert isinstance(subject_tree, Tree)
        subject = self._subject(subject_tree)
        position = self._position(tree)
        text = self._source(tree)
        operand: Scalar | ListLiteral | None = None
        operator_position = self._operator_position(tree, subject_tree)
        if kind == "compare":
            operator_tree, scalar_tree = tree.children[1:]
            assert isinstance(operator_tree, Tree)
            assert isinstance(scalar_tree, Tree)
            operator = _OPERATORS[str(operator_tree.children[0])]
            operand = self._scalar(scalar_tree)
        elif kind in ("is_in", "not_in"):
            operator = Operator.IN if kind == "is_in" else Operator.NOT_IN
            list_tree = tree.children[1]
            assert isinstance(list_tree, Tree)
            operand = self._list(list_tree)
        elif kind == "contains":
            operator = Operator.CONTAINS
            scalar_tree = tree.children[1]
            assert isinstance(scalar_tree, Tree)
            operand = self._scalar(scalar_tree)
        elif kind == "matches":
            operator = Operator.MATCHES
            pattern = tree.children[1]
            assert isinstance(pattern, Token)
            operand = StringLiteral(unescape(pattern), self._position(pattern))
        elif kind in ("is_set", "is_not_set"):
            operator = Operator.IS_SET if kind == "is_set" else Operator.IS_NOT_SET
        else:  # bare: a boolean used on its own means `= true`
            operator = Operator.EQ
            operand = BoolLiteral(True, position)
            return Comparison(subject, operator, operand, text, position, position, implicit=True)
        return Comparison(subject, operator, operand, text, position, operator_position)

    def _operator_position(self, tree: Tree, subject_tree: Tree) -> Position:
        """The first character after the subject that is not blank: where the operator starts."""
        offset = subject_tree.meta.end_pos
        end = tree.meta.end_pos
        while offset < end and self.text[offset].isspace():
            offset += 1
        return Position(self.file, *_line_and_column(self.text, offset))

    # subjects

    def _subject(self, tree: Tree) -> Subject:
        position = self._position(tree)
        kind = tree.data
        if kind == "field":
            return FieldRef(str(tree.children[0]), position)
        if kind == "call":
            name = str(tree.children[0])
            arguments = tuple(self._argument(child) for child in tree.children[1:] if child is not None)
            return FunctionRef(name, arguments, position)
        if kind == "attribute":
            return AttributeRef(str(tree.children[0])[len("attr.") :], position)
        # attribute_indexed: attr["any name"]
        key = tree.children[0]
        assert isinstance(key, Token)
        return AttributeRef(unescape(key), position)

    def _argument(self, node: Tree | Token) -> Argument:
        if isinstance(node, Token):
            return NameArgument(unescape(node), self._position(node))
        amount_token, unit_token = node.children
        assert isinstance(amount_token, Token)
        assert isinstance(unit_token, Token)
        return Window(
            amount=self._integer(amount_token),
            unit=_UNITS[str(unit_token).rstrip("s")],
            text=self._source(node),
            position=self._position(node),
        )

    # literals

    def _list(self, tree: Tree) -> ListLiteral:
        items = tuple(self._scalar(child) for child in tree.children if isinstance(child, Tree))
        return ListLiteral(items, self._position(tree))

    def _scalar(self, tree: Tree) -> Scalar:
        kind = tree.data
        position = self._position(tree)
        tokens = [child for child in tree.children if isinstance(child, Token)]
        if kind == "string":
            return StringLiteral(unescape(tokens[0]), position)
        if kind == "integer":
            return NumberLiteral(self._integer(tokens[0]), position)
        if kind == "decimal":
            return NumberLiteral(float(tokens[0]), position)
        if kind in ("true", "false"):
            return BoolLiteral(kind == "true", position)
        if kind == "now":
            return NowLiteral(position)
        if kind in ("ago", "from_now"):
            amount_token, unit_token = tokens
            return RelativeTime(
                amount=self._integer(amount_token),
                unit=_UNITS[str(unit_token).rstrip("s")],
                direction=-1 if kind == "ago" else 1,
                text=self._source(tree),
                position=position,
            )
        text = str(tokens[0])
        if kind == "date":
            try:
                epoch = float(parse_date(text) * SECONDS_PER_DAY)
            except InstantError:
                self._error(position, f"{text} is not a date (expected YYYY-MM-DD, e.g. 2026-11-01)")
                epoch = 0.0
            return InstantLiteral(epoch, text, position)
        return self._instant(tokens[0])

    def _instant(self, token: Token) -> InstantLiteral:
        text = str(token)
        position = self._position(token)
        try:
            epoch = parse_instant(text)
        except InstantError as problem:
            self._error(position, f"{text} is not an instant: {problem}")
            epoch = 0.0
        return InstantLiteral(epoch, text, position)

    def _integer(self, token: Token) -> int:
        try:
            return int(token)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            self._error(self._position(token), "number too long")
            return 0

    # campaign blocks

    def campaign(self, tree: Tree) -> CampaignDef:
        name_token, title_token, *setting_trees = tree.children
        assert isinstance(name_token, Token)
        settings: dict[str, Tree] = {}
        for setting in setting_trees:
            assert isinstance(setting, Tree)
            key = _SETTING_KEYS.get(setting.data, setting.data)
            earlier = settings.setdefault(key, setting)
            if earlier is not setting:
                self._error(
                    self._position(setting),
                    f"{_SETTING_NAMES[key]} is set twice in this campaign; first at {self._position(earlier)}",
                )
        audience = settings.get("audience")
        audience_token = audience.children[0] if audience is not None else None
        return CampaignDef(
            name=str(name_token),
            title=unescape(title_token) if isinstance(title_token, Token) else None,
            audience=str(audience_token) if isinstance(audience_token, Token) else None,
            audience_position=self._position(audience_token) if isinstance(audience_token, Token) else None,
            trigger=self._optional(settings, "trigger", self._trigger),
            reeligible_after=self._optional(settings, "reeligible", self._only_duration),
            holdout=self._optional(settings, "holdout", self._only_percentage),
            quiet_hours=self._optional(settings, "quiet_hours", self._quiet_hours),
            cap=self._optional(settings, "cap", self._cap),
            rate=self._optional(settings, "rate", self._rate),
            expire_after=self._optional(settings, "expire", self._only_duration),
            conversion=self._optional(settings, "conversion", self._conversion),
            guardrail=self._optional(settings, "guardrail", self._guardrail),
            push=self._optional(settings, "push", self._push),
            source=self._source(tree),
            position=self._position(tree),
            name_position=self._position(name_token),
        )

    def _optional(
        self, settings: dict[str, Tree], key: str, build: Callable[[Tree], _Built]
    ) -> _Built | None:
        setting = settings.get(key)
        return build(setting) if setting is not None else None

    def _trigger(self, tree: Tree) -> Trigger:
        position = self._position(tree)
        if tree.data == "send_on_entry":
            return SendOnEntry(position)
        (token,) = tree.children
        assert isinstance(token, Token)
        if tree.data == "send_daily":
            return SendDaily(self._clock_time(token), position)
        return SendOnce(self._instant(token), position)

    def _only_duration(self, tree: Tree) -> Duration:
        (duration,) = tree.children
        assert isinstance(duration, Tree)
        return self._duration(duration)

    def _only_percentage(self, tree: Tree) -> Percentage:
        (percentage,) = tree.children
        assert isinstance(percentage, Tree)
        return self._percentage(percentage)

    def _quiet_hours(self, tree: Tree) -> QuietHours:
        start, end = tree.children
        assert isinstance(start, Token)
        assert isinstance(end, Token)
        return QuietHours(self._clock_time(start), self._clock_time(end), self._position(tree))

    def _cap(self, tree: Tree) -> Cap:
        count, period = tree.children
        assert isinstance(count, Token)
        assert isinstance(period, Tree)
        return Cap(self._integer(count), self._position(count), self._duration(period), self._position(tree))

    def _rate(self, tree: Tree) -> Rate:
        count, unit = tree.children
        assert isinstance(count, Token)
        assert isinstance(unit, Token)
        return Rate(
            per_minute=self._integer(count),
            count_position=self._position(count),
            unit=_UNITS[str(unit).rstrip("s")],
            unit_position=self._position(unit),
            position=self._position(tree),
        )

    def _conversion(self, tree: Tree) -> Conversion:
        *name, window = tree.children
        assert isinstance(window, Tree)
        event_name = None
        if name:
            (token,) = name
            assert isinstance(token, Token)
            event_name = StringLiteral(unescape(token), self._position(token))
        kind = ConversionKind(tree.data.removeprefix("conversion_"))
        return Conversion(kind, event_name, self._duration(window), self._position(tree))

    def _guardrail(self, tree: Tree) -> Guardrail:
        percentage, sends = tree.children
        assert isinstance(percentage, Tree)
        assert isinstance(sends, Token)
        return Guardrail(
            opt_outs_above=self._percentage(percentage),
            after_sends=self._integer(sends),
            after_sends_position=self._position(sends),
            position=self._position(tree),
        )

    def _push(self, tree: Tree) -> PushTemplate:
        templates: dict[str, TemplateText] = {}
        for setting in tree.children:
            assert isinstance(setting, Tree)
            key = setting.data.removeprefix("push_")
            (token,) = setting.children
            assert isinstance(token, Token)
            if key in templates:
                self._error(
                    self._position(setting),
                    f"{key} is set twice in this push; first at {templates[key].position}",
                )
                continue
            templates[key] = TemplateText(unescape(token), str(token), self._position(token))
        return PushTemplate(
            title=templates.get("title"),
            body=templates.get("body"),
            deep_link=templates.get("deep_link"),
            image=templates.get("image"),
            position=self._position(tree),
        )

    def _duration(self, tree: Tree) -> Duration:
        amount, unit = tree.children
        assert isinstance(amount, Token)
        assert isinstance(unit, Token)
        return Duration(
            amount=self._integer(amount),
            unit=_UNITS[str(unit).rstrip("s")],
            text=self._source(tree),
            position=self._position(tree),
        )

    def _percentage(self, tree: Tree) -> Percentage:
        (number,) = tree.children
        assert isinstance(number, Token)
        return Percentage(float(number), self._source(tree), self._position(tree))

    def _clock_time(self, token: Token) -> ClockTime:
        hours, minutes = (int(part) for part in str(token).split(":"))
        position = self._position(token)
        if len(token) != 5 or hours > 23 or minutes > 59:
            self._error(position, f"{token} is not a time of day: write HH:MM, from 00:00 to 23:59")
            return ClockTime(None, str(token), position)
        return ClockTime(hours * 60 + minutes, str(token), position)


# A campaign setting's key (the triggers and the conversions are one setting each) and how messages
# name it.
_SETTING_KEYS = {
    "send_on_entry": "trigger",
    "send_daily": "trigger",
    "send_once": "trigger",
    "conversion_event": "conversion",
    "conversion_purchase": "conversion",
    "conversion_session": "conversion",
}
_SETTING_NAMES = {
    "audience": "audience",
    "trigger": "the trigger (send ...)",
    "reeligible": "reeligible after",
    "holdout": "holdout",
    "quiet_hours": "quiet hours",
    "cap": "cap",
    "rate": "rate",
    "expire": "expire after",
    "conversion": "conversion",
    "guardrail": "guardrail",
    "push": "push",
}
