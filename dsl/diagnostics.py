"""Errors in segment files, rendered the way a compiler does: where, what, and the line with a caret."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from dsl.model import Position


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a source file. `source_line` is the text of `line` (without its newline), kept
    so that a diagnostic renders on its own, far from the file it came from."""

    file: str
    line: int
    column: int
    message: str
    source_line: str = ""

    @classmethod
    def at(cls, position: Position, message: str, source_line: str = "") -> Diagnostic:
        return cls(position.file, position.line, position.column, message, source_line)

    def format(self) -> str:
        """`file:line:col: message`, then the source line, then a caret under the column."""
        header = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if not self.source_line:
            return header
        # Keep tabs as tabs under the caret so that it lines up however the terminal expands them.
        lead = "".join("\t" if char == "\t" else " " for char in self.source_line[: self.column - 1])
        return f"{header}\n    {self.source_line}\n    {lead}^"

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "column": self.column, "message": self.message}


def source_line(text: str, line: int) -> str:
    """Line `line` (from 1) of `text`, as Lark counts lines (on "\\n" only)."""
    lines = text.split("\n")
    if 1 <= line <= len(lines):
        return lines[line - 1].rstrip("\r")
    return ""


def did_you_mean(name: str, candidates: Iterable[str], quote: bool = False) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not close:
        return ""
    suggestion = f'"{close[0]}"' if quote else close[0]
    return f"; did you mean {suggestion}?"


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """In file order, then by position; duplicates (the same message at the same spot) once."""
    unique = dict.fromkeys(diagnostics)
    return sorted(unique, key=lambda item: (item.file, item.line, item.column, item.message))


def format_diagnostics(diagnostics: Iterable[Diagnostic]) -> str:
    return "\n".join(diagnostic.format() for diagnostic in diagnostics)


class DslError(Exception):
    """Segment sources that cannot be used; `diagnostics` lists every problem found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        count = len(self.diagnostics)
        summary = f"{count} error{'s' if count != 1 else ''} in segment definitions"
        super().__init__(summary)

    def format(self) -> str:
        return format_diagnostics(self.diagnostics)

    def __str__(self) -> str:
        return self.format() or super().__str__()
