"""Lark's syntax errors (UnexpectedInput) in our words: what was found, what was expected, and the
keyword that was probably meant, at a true line and column."""

from __future__ import annotations

import difflib
import functools
import re

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from dsl.diagnostics import Diagnostic, source_line

_DESCRIBED_TERMINALS = {
    "STRING": "a string",
    "INTEGER": "a number",
    "DECIMAL": "a number",
    "DATE": "a date",
    "INSTANT": "an instant",
    "CLOCK_TIME": "a time of day (HH:MM)",
    "IDENTIFIER": "a name",
    "ATTRIBUTE_NAME": "attr.NAME",
    "TIME_UNIT": "a time unit (minutes, hours, days, weeks)",
    "$END": "end of file",
}
# How the grammar writes a keyword: /segment\b/, /deep_link\b/, /UTC\b/.
_KEYWORD_PATTERN = re.compile(r"^([A-Za-z_]+)\\b$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.cache
def _keywords(lark: Lark) -> dict[str, str]:
    """Terminal name → the keyword it stands for, for the terminals that are keywords."""
    found: dict[str, str] = {}
    for terminal in lark.terminals:
        keyword = _KEYWORD_PATTERN.match(terminal.pattern.value)
        if keyword and not isinstance(terminal.pattern, PatternStr):
            found[terminal.name] = keyword.group(1)
    return found


@functools.cache
def _terminal_names(lark: Lark) -> dict[str, str]:
    """Terminal name → how an error message shows it: `"}"`, `"and"`, `a number`."""
    shown: dict[str, str] = dict(_DESCRIBED_TERMINALS)
    keywords = _keywords(lark)
    for terminal in lark.terminals:
        if terminal.name in shown:
            continue
        if isinstance(terminal.pattern, PatternStr):
            shown[terminal.name] = f'"{terminal.pattern.value}"'
        elif terminal.name in keywords:
            shown[terminal.name] = f'"{keywords[terminal.name]}"'
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
    (
        frozenset(
            {"_AUDIENCE", "_SEND", "_REELIGIBLE", "_HOLDOUT", "_QUIET", "_CAP", "_RATE", "_EXPIRE"}
            | {"_CONVERSION", "_GUARDRAIL", "_PUSH"}
        ),
        "a campaign setting (audience, send, reeligible, holdout, quiet hours, cap, rate, expire,"
        " conversion, guardrail, push)",
    ),
)


def _describe_expected(lark: Lark, names: set[str]) -> str:
    shown = _terminal_names(lark)
    remaining = names - set(lark.ignore_tokens)
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


def _meant_keyword(lark: Lark, word: str, expected: set[str]) -> str:
    """`; did you mean "campaign"?` when `word` looks like a misspelling of a keyword wanted here."""
    keywords = _keywords(lark)
    candidates = sorted(keywords[name] for name in expected if name in keywords)
    if word in candidates:
        return ""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


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


def syntax_diagnostic(error: UnexpectedInput, text: str, file: str, lark: Lark) -> Diagnostic:
    """The diagnostic for a syntax error that `lark` raised parsing `text`."""
    line, column = error.line, error.column
    expected = _expected_terminals(error)
    if isinstance(error, UnexpectedCharacters):
        offset = error.pos_in_stream
        char = text[offset] if offset is not None and 0 <= offset < len(text) else ""
        if char == '"':
            message = 'unterminated string (a string must end with " on the same line)'
        else:
            message = f"unexpected character {char!r}" + _describe_expected(lark, expected)
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
        message += _describe_expected(lark, expected)
        if token.type != "$END" and _WORD.fullmatch(str(token.value)):
            message += _meant_keyword(lark, str(token.value), expected)
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
