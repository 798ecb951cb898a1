"""Push templates: Liquid (python-liquid), checked and compiled once when the rules load, rendered with
a user's field values when a push is sent (campaigns.md, "Templates are Liquid").

Templates are data like rules: rendering runs no Python and reads no file. The environment has no
`include` or `render` tag (a template that uses one does not load) and its loader holds no template;
loops and output are bounded so that a template cannot stall the sender.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import liquid
from liquid import BoundTemplate, DictLoader
from liquid.exceptions import LiquidError

from dsl.diagnostics import did_you_mean
from dsl.fields import FIELDS

# What a template may read: the fields that are written without arguments in rules (dsl.md names),
# and custom attributes as attr.NAME or attr["any name"]. Fields that need arguments
# (sessions(last 30 days), received("x")) have no Liquid spelling.
ATTRIBUTES = "attr"
TEMPLATE_FIELDS = frozenset({name for name, spec in FIELDS.items() if spec.plain} | {ATTRIBUTES})


class _PushEnvironment(liquid.Environment):
    # Pushes are short; these stop a template from looping or writing without end.
    loop_iteration_limit = 1_000
    output_stream_limit = 10_000
    local_namespace_limit = 10_000

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=False)
        # The tags that load other templates: with them gone, `{% include "/etc/passwd" %}` is a
        # syntax error when the rules load, never a file read when a push is sent.
        for tag in ("include", "render"):
            self.tags.pop(tag, None)


# Default (lenient) undefined: an unset value renders empty and `default` replaces it (campaigns.md).
# Names that are not fields never reach rendering: check_template rejects them when the rules load.
_ENVIRONMENT = _PushEnvironment(loader=DictLoader({}))


class TemplateRenderError(Exception):
    """A template that failed to render with these values (campaigns.md: the send ends `failed`,
    with this message as its reason)."""


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """What is wrong with a template, at `offset` characters into its text."""

    offset: int
    message: str


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A template parsed once; render it as many times as needed."""

    text: str
    _bound: BoundTemplate

    def render(self, fields: Mapping[str, object]) -> str:
        """The text for one user. `fields` maps field names (`first_name`, `sessions`, ...) to their
        values, and `attr` to a mapping of the custom attributes; a name that is missing or None is
        unset. TemplateRenderError when rendering fails (a filter given a value it cannot take, a
        limit reached)."""
        try:
            return self._bound.render(dict(fields))
        except LiquidError as error:
            raise TemplateRenderError(f"template does not render: {error.message}") from error
        except (TypeError, ValueError, ArithmeticError, RecursionError) as error:
            raise TemplateRenderError(f"template does not render: {error}") from error


@dataclass(frozen=True, slots=True)
class CheckedTemplate:
    """`template` is None when `problems` is not empty."""

    template: CompiledTemplate | None
    problems: tuple[TemplateProblem, ...]


@functools.lru_cache(maxsize=4096)
def check_template(text: str) -> CheckedTemplate:
    """Parse `text` and check the names it reads and the filters it uses. Cached: checking a set of
    rules and then compiling it parses each template once."""
    try:
        bound = _ENVIRONMENT.from_string(text)
    except LiquidError as error:
        return CheckedTemplate(None, (TemplateProblem(_offset(error), f"bad template: {error.message}"),))
    try:
        analysis = bound.analyze(include_partials=False)
    except LiquidError as error:  # analysis walks what parsed; kept for safety, not seen in practice
        return CheckedTemplate(None, (TemplateProblem(_offset(error), f"bad template: {error.message}"),))
    problems: list[TemplateProblem] = []
    for name, uses in analysis.globals.items():
        for use in uses:
            if name not in TEMPLATE_FIELDS:
                message = f"unknown field {name} in template" + did_you_mean(name, sorted(TEMPLATE_FIELDS))
                problems.append(TemplateProblem(use.span.index, message))
            elif name == ATTRIBUTES and len(use.segments) < 2:
                problems.append(
                    TemplateProblem(use.span.index, 'write attr.NAME or attr["any name"], not attr alone')
                )
    for name, spans in analysis.filters.items():
        if name not in _ENVIRONMENT.filters:
            for span in spans:
                message = f"unknown filter {name}" + did_you_mean(name, sorted(_ENVIRONMENT.filters))
                problems.append(TemplateProblem(span.index, message))
    if problems:
        return CheckedTemplate(None, tuple(sorted(problems, key=lambda problem: problem.offset)))
    return CheckedTemplate(CompiledTemplate(text, bound), ())


def compile_template(text: str) -> CompiledTemplate:
    """The compiled template; ValueError naming the first problem if it does not check clean (the
    checker reports them all, with positions, before anything compiles)."""
    checked = check_template(text)
    if checked.template is None:
        raise ValueError(checked.problems[0].message)
    return checked.template


def _offset(error: LiquidError) -> int:
    token = error.token
    if token is None or token.start_index < 0:
        return 0
    return token.start_index
