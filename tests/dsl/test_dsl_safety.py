"""Rules are data: no rule text can run Python or reach Python objects."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dsl
from dsl import check_sources, compile_sources
from tests.dsl.support import AT, make_profile

DSL_SOURCES = sorted(Path(dsl.__file__).parent.glob("*.py"))
# Builtins that turn text into running code, and the back doors to the same (re.compile is fine:
# a regular expression is not Python).
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint"}
FORBIDDEN_ATTRIBUTES = {"import_module", "FunctionType", "CodeType", "literal_eval"}
FORBIDDEN_MODULES = {"pickle", "marshal", "code", "codeop", "runpy", "subprocess", "os"}


@pytest.mark.parametrize("path", DSL_SOURCES, ids=lambda path: path.name)
def test_the_package_never_evaluates_code(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            found.append(f"{path.name}:{node.lineno}: {node.func.id}()")
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = {alias.name.split(".")[0] for alias in node.names}
            if isinstance(node, ast.ImportFrom):
                modules = {(node.module or "").split(".")[0]}
            if modules & FORBIDDEN_MODULES:
                found.append(f"{path.name}:{node.lineno}: imports {sorted(modules)}")
    assert found == []


def test_python_in_strings_is_only_text(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    segments = compile_sources(
        [
            (
                "a.seg",
                f'segment a {{ country = "{payload}" or attr["{payload}"] is set or email matches "{payload}" }}',
            )
        ]
    )
    profile = make_profile(standard={"country": "fr", "email": "x"})
    assert segments.evaluate("a", profile, AT) is False
    assert not marker.exists()
    profile.standard["country"] = payload
    assert segments.evaluate("a", profile, AT) is True
    assert not marker.exists()


@pytest.mark.parametrize(
    "source",
    [
        'segment a { __import__("os").system("true") }',
        "segment a { sessions > 1; import os }",
        "segment a { sessions.__class__ = 1 }",
        'segment a { in_segment("__class__") }',
        "segment a { __class__ = 1 }",
        'segment a { sessions > 1 } __import__("os")',
        "segment a { lambda: 1 }",
        'segment a { country = f"{1}" }',
    ],
)
def test_python_syntax_is_rejected(source: str) -> None:
    assert check_sources([("a.seg", source)]) != []


def test_custom_attributes_never_reach_python_attributes() -> None:
    # attr.X reads the app's custom attributes by key, never an attribute of a Python object.
    segments = compile_sources(
        [("a.seg", 'segment a { attr.__class__ is set or attr["__dict__"] is set or attr.custom is set }')]
    )
    assert segments.evaluate("a", make_profile(), AT) is False
    assert segments.evaluate("a", make_profile(custom={"__class__": "x"}), AT) is True
