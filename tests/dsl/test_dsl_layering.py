"""The language sits below kudos: kudos imports dsl, never the other way round."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dsl

DSL_DIRECTORY = Path(dsl.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
    return found


def test_no_dsl_module_imports_kudos() -> None:
    offenders = {
        str(path.relative_to(DSL_DIRECTORY)): sorted(
            module for module in _imported_modules(path) if module == "kudos" or module.startswith("kudos.")
        )
        for path in sorted(DSL_DIRECTORY.rglob("*.py"))
    }
    assert {file: modules for file, modules in offenders.items() if modules} == {}


def test_importing_dsl_loads_no_kudos_module() -> None:
    # Catches what a static scan cannot: importlib calls, or an import hidden in a dependency.
    script = (
        "import sys, dsl, dsl.checker, dsl.compiler, dsl.explain, dsl.parser, dsl.profile, "
        "dsl.runtime, dsl.segments, dsl.timeutil\n"
        "print(sorted(name for name in sys.modules if name == 'kudos' or name.startswith('kudos.')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
