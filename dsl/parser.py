"""Text to `dsl.model`: Lark parses, this module turns its tree into typed values and its exceptions
into diagnostics. Nothing here raises for bad input; problems come back as a list."""

from __future__ import annotations

import difflib
import functools
import itertools
import re
from dataclasses import dataclass, field
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from dsl.diagnostics import Diagnostic
from dsl.model import (
    And,
    Argument,
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
    Position,
    RelativeTime,
    Scalar,
    SegmentDef,
    StringLiteral,
    Subject,
    TimeUnit,
    Window,
)
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
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # Names of segments whose block has a syntax error: known to exist, so that reading them with
    # in_segment elsewhere is not reported as well.
    unparsed_names: set[str] = field(default_factory=set)
    # Top-level blocks of other kinds (campaigns): not this language's to parse, kept for the one that is.
    other_blocks: list[OtherBlock] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OtherBlock:
    """`KEYWORD ... { ... }` at the top level of a file, as written (`text` spans the whole block)."""

    keyword: str
    line: int
    column: int
    text: str


def source_line(text: str, line: int) -> str:
    """Line `line` (from 1) of `text`, as Lark counts lines (on "\\n" only)."""
    lines = text.split("\n")
    if 1 <= line <= len(lines):
        return lines[line - 1].rstrip("\r")
    return ""


def parse_source(text: str, file: str) -> ParsedSource:
    """Parse one file. On a syntax error, the blocks that do parse are still returned (so that their
    own errors are reported too and their names are known to other files)."""
    parsed = ParsedSource(file=file, text=text)
    segments_only, parsed.other_blocks, parsed.diagnostics = set_aside_other_blocks(text, file)
    try:
        tree = _lark().parse(segments_only)
    except UnexpectedInput as error:
        first = _syntax_diagnostic(error, segments_only, file)
        parsed.diagnostics.append(first)
        _recover_blocks(parsed, segments_only, after=(first.line, first.column))
        return parsed
    _build(parsed, tree, segments_only)
    return parsed


def _build(parsed: ParsedSource, tree: Tree, text: str) -> None:
    builder = _ModelBuilder(text, parsed.file)
    for definition_tree in tree.children:
        if not isinstance(definition_tree, Tree):
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


# A top-level block starts at the beginning of a line; this finds where each one does.
_BLOCK_KEYWORDS = ("segment",)
_BLOCK_START = re.compile(rf"^[ \t]*(?:{'|'.join(_BLOCK_KEYWORDS)})\b", re.MULTILINE)
_SEGMENT_HEADER = re.compile(r"[ \t]*segment\s+([A-Za-z_][A-Za-z0-9_]*)")


def _recover_blocks(parsed: ParsedSource, text: str, after: tuple[int, int]) -> None:
    """Parse each top-level block on its own, padded with newlines so that positions stay true.
    Errors up to the first one (already reported) are consequences of it and are dropped."""
    starts = [match.start() for match in _BLOCK_START.finditer(text)]
    if not starts:
        return
    bounds = [*starts, len(text)]
    for start, end in itertools.pairwise(bounds):
        padded = "\n" * text.count("\n", 0, start) + text[start:end]
        try:
            tree = _lark().parse(padded)
        except UnexpectedInput as error:
            diagnostic = _syntax_diagnostic(error, padded, parsed.file)
            if (diagnostic.line, diagnostic.column) > after:
                parsed.diagnostics.append(diagnostic)
            header = _SEGMENT_HEADER.match(text, start, end)
            if header:
                parsed.unparsed_names.add(header.group(1))
            continue
        _build(parsed, tree, padded)


# --- other top-level blocks -----------------------------------------------------------------------

# dsl.md lets other blocks (campaigns) share a file with segments, without fixing their syntax. A
# block is `keyword ... { ... }` with balanced braces outside strings and comments; it is blanked out
# (newlines kept, so positions stay true) before the segment grammar sees the text. A keyword close
# to `segment` is taken for a misspelt segment and left in, so that it is reported, not ignored.
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OTHER_KEYWORD = re.compile(r"[a-z][a-z0-9_]*")
_SPACE_OR_COMMENT = re.compile(r"(?:\s+|#[^\n]*)+")
_STRING = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"?')


def set_aside_other_blocks(text: str, file: str) -> tuple[str, list[OtherBlock], list[Diagnostic]]:
    """`text` with every top-level block that is not a segment blanked out, those blocks, and the
    problem with the one that does not close, if any."""
    blocks: list[OtherBlock] = []
    problems: list[Diagnostic] = []
    pieces: list[str] = []
    kept_from = 0
    position = _skip_space(text, 0)
    while position < len(text):
        word = _WORD.match(text, position)
        if word is None:
            break  # not the start of a block: the segment grammar reports it
        keyword = word.group()
        other = keyword != "segment" and _is_other_keyword(keyword)
        end = _block_end(text, word.end())
        if end is None and other:
            # Where an unbalanced block ends is anyone's guess: the rest of the file goes with it.
            line, column = _line_and_column(text, position)
            message = f"this {keyword} block does not close: it needs {{ ... }} with balanced braces"
            problems.append(Diagnostic(file, line, column, message, source_line(text, line)))
            end = len(text)
        if end is None:
            break
        if other:
            line, column = _line_and_column(text, position)
            blocks.append(OtherBlock(keyword, line, column, text[position:end]))
            pieces.append(text[kept_from:position])
            pieces.append(re.sub(r"[^\n]", " ", text[position:end]))
            kept_from = end
        position = _skip_space(text, end)
    pieces.append(text[kept_from:])
    return "".join(pieces), blocks, problems


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _is_other_keyword(word: str) -> bool:
    return bool(_OTHER_KEYWORD.fullmatch(word)) and not difflib.get_close_matches(
        word, ["segment"], cutoff=0.7
    )


def _skip_space(text: str, position: int) -> int:
    space = _SPACE_OR_COMMENT.match(text, position)
    return space.end() if space else position


def _block_end(text: str, position: int) -> int | None:
    """Just after the `}` that closes the first `{` from `position`; None when there is none, or
    when a `}` comes first."""
    depth = 0
    while position < len(text):
        char = text[position]
        if char == '"':
            position = _STRING.match(text, position).end()  # type: ignore[union-attr]
            continue
        if char == "#":
            position = _skip_space(text, position)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return None
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return None


# --- syntax errors ------------------------------------------------------------------------------

_DESCRIBED_TERMINALS = {
    "STRING": "a string",
    "INTEGER": "a number",
    "DECIMAL": "a number",
    "DATE": "a date",
    "INSTANT": "an instant",
    "IDENTIFIER": "a name",
    "ATTRIBUTE_NAME": "attr.NAME",
    "TIME_UNIT": "a time unit (minutes, hours, days, weeks)",
    "$END": "end of file",
}
_KEYWORD_PATTERN = re.compile(r"^([a-z]+)\\b$")


@functools.cache
def _terminal_names() -> dict[str, str]:
    """Terminal name → how an error message shows it: `"}"`, `"and"`, `a number`."""
    shown: dict[str, str] = dict(_DESCRIBED_TERMINALS)
    for terminal in _lark().terminals:
        if terminal.name in shown:
            continue
        pattern = terminal.pattern
        keyword = _KEYWORD_PATTERN.match(pattern.value)
        if isinstance(pattern, PatternStr):
            shown[terminal.name] = f'"{pattern.value}"'
        elif keyword:
            shown[terminal.name] = f'"{keyword.group(1)}"'
        else:
            shown[terminal.name] = terminal.name.lower()
    return shown


# Terminals that always come together, shown as one thing: where a condition or a value may start.
_GROUPS = (
    (
        frozenset({"IDENTIFIER", "ATTRIBUTE_NAME", "_ATTR", "_NOT", "LPAR"}),
        'a condition (a field, attr.NAME, "not" or "(")',
    ),
    (
        frozenset({"STRING", "INTEGER", "DECIMAL", "_TRUE", "_FALSE", "DATE", "INSTANT", "_NOW"}),
        "a value (a number, a string, true, false, a date, an instant, now or N days ago)",
    ),
)


def _describe_expected(names: set[str] | frozenset[str]) -> str:
    shown = _terminal_names()
    remaining = set(names) - set(_lark().ignore_tokens)
    described: set[str] = set()
    for members, description in _GROUPS:
        if members <= remaining:
            remaining -= members
            described.add(description)
    described |= {shown.get(name, name) for name in remaining}
    ordered = sorted(described, key=lambda text: (not text.startswith('"'), text))
    if not ordered:
        return ""
    if len(ordered) == 1:
        return f"; expected {ordered[0]}"
    return "; expected one of: " + ", ".join(ordered)


def _expected_terminals(error: UnexpectedInput) -> set[str]:
    # An LALR state can be shared by several contexts, so the state's list is too generous; asking
    # the parser which terminals it would really accept gives the exact list.
    interactive = getattr(error, "interactive_parser", None)
    if interactive is not None:
        try:
            return set(interactive.accepts())
        except UnexpectedInput:
            pass
    if isinstance(error, UnexpectedToken):
        return set(error.expected)
    if isinstance(error, UnexpectedCharacters):
        return set(error.allowed or ())
    return set()


def _syntax_diagnostic(error: UnexpectedInput, text: str, file: str) -> Diagnostic:
    line, column = error.line, error.column
    if isinstance(error, UnexpectedCharacters):
        offset = error.pos_in_stream
        char = text[offset] if offset is not None and 0 <= offset < len(text) else ""
        if char == '"':
            message = 'unterminated string (a string must end with " on the same line)'
        else:
            message = f"unexpected character {char!r}" + _describe_expected(_expected_terminals(error))
    elif isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            message = "unexpected end of file"
            # Lark places the end on the last token; the reader looks for what is missing after it.
            line, column = _end_position(text)
        elif token.type == "STRING":
            message = f"unexpected string {token.value}"
        elif token.value == "=" and text[token.start_pos - 1 : token.start_pos] == "=":
            message = 'unexpected "=" (equality is a single =)'
        else:
            message = f'unexpected "{token.value}"'
        message += _describe_expected(_expected_terminals(error))
    else:
        message = "syntax error"
    if line < 1:
        line, column = _end_position(text)
    return Diagnostic(file, line, max(column, 1), message, source_line(text, line))


def _end_position(text: str) -> tuple[int, int]:
    """Just after the last character that is not whitespace (or 1:1 for an empty file)."""
    stripped = text.rstrip()
    if not stripped:
        return 1, 1
    line = stripped.count("\n") + 1
    column = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, column


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
        # instant
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
